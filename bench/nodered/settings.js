// Node-RED settings for the side-by-side benchmark: the flow only, no editor, no admin API, quiet logs.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.PORT, 10),
    flowFile: process.env.FLOW_FILE,
    userDir: process.env.USER_DIR,
    httpAdminRoot: false,
    disableEditor: true,
    credentialSecret: false,
    // The form body limit must let the benchmark's posts through (default 5 MB is plenty for 2 KB).
    apiMaxLength: "5mb",
    logging: { console: { level: "warn", metrics: false, audit: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
    functionExternalModules: false,
    telemetry: { enabled: false },
};
