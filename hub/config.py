"""The configuration: one YAML file, validated completely before anything starts.

Secrets are never literals: ``${ENV_NAME}`` takes a value from the environment, ``file:/path`` (in
secret fields) reads it from a file. Every error names the file, the key path inside it (with its line)
and what was expected.
"""

from __future__ import annotations

import os
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.alerts import AlertsConfig
from hub.audit import AuditConfig
from hub.certificates import CertificatesConfig
from hub.connectors import ConnectorConfig, Sink
from hub.console.config import ConsoleConfig
from hub.errors import ConfigError, PluginError
from hub.mapping import MappingFile, MappingLoadError, PayloadModels, load_mapping
from hub.models import Address, Party, TrustLevel
from hub.plugins import Plugins
from hub.schemas import schema_directory
from hub.secret import BASE_DIR, Secret
from hub.yamlpos import KeyPath, dotted, line_map, nearest_line

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Role = Literal["viewer", "operator", "admin"]
# What a hub process does; several processes on one journal may split them (`intake.enabled`,
# `workers.enabled`), every process serves the admin API, the console, /metrics, /healthz and /readyz.
ProcessRole = Literal["intake", "workers"]
PROCESS_ROLES: tuple[ProcessRole, ...] = ("intake", "workers")


class AdminToken(_Strict):
    """A bearer token for the admin API and its role."""

    name: str = Field(description="who uses it, for the audit trail")
    token: Secret
    role: Role = "viewer"


class ServerConfig(_Strict):
    """The HTTP server."""

    listen: str = "127.0.0.1:8080"
    max_body: ByteSize = Field(ByteSize(100 * 1024 * 1024), description="largest request body")
    max_header: ByteSize = Field(
        ByteSize(64 * 1024), description="largest request header (a forwarded SAML response is ~20 KB)"
    )
    admin_tokens: list[AdminToken] = Field(default_factory=list)
    keepalive_timeout: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="seconds a connection may wait for its next request head, complete: closes idle "
        "keep-alive connections and clients that send their headers too slowly",
    )
    body_timeout: float = Field(
        60.0, gt=0, le=3600, description="seconds a request body may send nothing before it is refused (408)"
    )
    retry_after: int = Field(
        60, ge=1, le=86400, description="Retry-After (seconds) when storage is full and intake answers 503"
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    @property
    def host(self) -> str:
        """Host part of `listen`."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """Port part of `listen`."""
        return int(self.listen.rpartition(":")[2])


# S3 copies an object in one CopyObject up to 5 GiB: the largest blob the object store takes.
S3_MAX_OBJECT = 5 * 1024**3


class S3Location(_Strict):
    """A bucket and key prefix on an S3-compatible object store, from ``s3://bucket/prefix?endpoint=...``.

    Credentials never appear here: they come from the environment (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``) or the standard AWS configuration chain.
    """

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="the bucket")
    prefix: str = Field("", description="key prefix inside the bucket (no leading or trailing slash)")
    endpoint: str | None = Field(
        None, description="the store's URL (Ceph RGW, Garage, SeaweedFS, MinIO); None: AWS for the region"
    )
    region: str | None = Field(None, description="the region to sign requests for")
    addressing: Literal["path", "virtual", "auto"] = Field(
        "path", description="bucket in the path (most self-hosted stores) or in the host name"
    )

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """The location an ``s3://`` URL names; raises ValueError (never echoing credentials)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError("expected s3://bucket/prefix?endpoint=https://...&region=...")
        if "@" in parts.netloc:
            raise ValueError("credentials do not belong in the blob store URL: set AWS_ACCESS_KEY_ID etc.")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(query) - {"endpoint", "region", "addressing"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}: endpoint, region, addressing")
        endpoint = query.get("endpoint")
        if endpoint is not None:
            split = urlsplit(endpoint)
            if split.scheme not in ("http", "https") or not split.hostname:
                raise ValueError("endpoint must be an http(s) URL")
            if "@" in split.netloc or split.query:
                raise ValueError("endpoint must not carry credentials or parameters")
        return cls.model_validate({"bucket": parts.netloc, "prefix": parts.path.strip("/"), **query})

    def __str__(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"


class BlobsConfig(_Strict):
    """The blob store: a local directory (`path`) or an S3 bucket (``path: s3://bucket/prefix?...``)."""

    path: Path | None = Field(None, description="the local directory (None with `s3`)")
    s3: S3Location | None = Field(None, description="the S3 bucket (given as ``path: s3://...``)")
    max_size: ByteSize = Field(ByteSize(2 * 1024**3), description="largest single file")
    orphan_grace_seconds: float = Field(
        3600.0,
        ge=60,
        description="a blob no journal row references is removed once it is this old (an intake "
        "writes its files before the row that references them)",
    )
    sweep_interval_seconds: float = Field(
        3600.0, gt=0, description="how often unreferenced blobs are looked for (also at start)"
    )

    @model_validator(mode="before")
    @classmethod
    def _s3_url(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("path"), str) and value["path"].startswith("s3:"):
            value = {**value, "s3": S3Location.parse(value["path"]), "path": None}
        return value

    @model_validator(mode="after")
    def _one_store(self) -> BlobsConfig:
        if (self.path is None) == (self.s3 is None):
            raise ValueError("give the blob store as a directory or an s3:// URL")
        if self.s3 is not None and self.max_size > S3_MAX_OBJECT:
            raise ValueError(f"max_size above {S3_MAX_OBJECT} bytes (5 GiB): S3 copies no larger object")
        return self

    @property
    def data_dir(self) -> Path | None:
        """The directory beside the local blobs, where connectors keep their small state files."""
        return None if self.path is None else Path(self.path).parent


class IntakeConfig(_Strict):
    """What this process takes in: submissions and answers, sent to it or fetched by its pollers."""

    enabled: bool = Field(
        True,
        description="false: a worker-only process (no /intake/ and /callback/ routes: they answer 503; "
        "no source or answer polling)",
    )


class WorkersConfig(_Strict):
    """The step workers."""

    enabled: bool = Field(True, description="false: an intake-only process (it runs no steps)")
    concurrency: int = Field(16, ge=1, le=1024, description="tasks run at once in this process")
    lease_seconds: float = Field(120.0, gt=1)
    idle_poll_seconds: float = Field(1.0, gt=0, description="how often idle workers look for work")
    render_processes: int = Field(
        1, ge=0, le=64, description="processes rendering PDFs (0: in a thread of the hub process)"
    )


# What a route may demand a trust level for: the applicant's fields as identity providers fill them.
IDENTITY_ATTRIBUTES = frozenset(
    {*(set(Party.model_fields) - {"address", "organisation", "phone"}), *Address.model_fields, "gender"}
)


class IdentityRequirement(_Strict):
    """A route's identity check."""

    via: str = Field(description="name of an identity connector")
    min_level: TrustLevel | None = None
    attribute_levels: dict[str, TrustLevel] = Field(
        default_factory=dict,
        description="per attribute (applicant field: birth_date, family_name, street ...) the trust "
        "level its value must carry (e.g. BundID's akdb:TrustLevel); missing or lower: rejected",
    )

    @field_validator("attribute_levels")
    @classmethod
    def _known_attributes(cls, value: dict[str, TrustLevel]) -> dict[str, TrustLevel]:
        unknown = sorted(set(value) - IDENTITY_ATTRIBUTES)
        if unknown:
            raise ValueError(
                f"unknown attribute {', '.join(unknown)}; known: {', '.join(sorted(IDENTITY_ATTRIBUTES))}"
            )
        return value


class When(_Strict):
    """Which submissions a route takes."""

    service: str | list[str] | None = None

    def matches(self, service: str) -> bool:
        """Whether a submission for `service` goes this way."""
        if self.service is None:
            return True
        if isinstance(self.service, str):
            return self.service == service
        return service in self.service


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class OnAnswer(_Strict):
    """What a Fachverfahren's answer on this route triggers (see `hub.answers`).

    `update_akte`: the e-file target whose `record_answer` files what the answer changes (index fields
    of the Akte, the decision into the Vorgang); `notify`: the notifiers that tell the applicant the new
    status; `decision`: whether the decision is filed into the e-file (`file`), sent to the applicant
    with the status (`attach`), or both.
    """

    update_akte: str | None = None
    notify: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    decision: Literal["attach", "file", "both"] = "file"

    @property
    def files_decision(self) -> bool:
        """Whether the decision goes into the e-file."""
        return self.decision in ("file", "both")

    @property
    def attaches_decision(self) -> bool:
        """Whether the decision goes to the applicant with the status."""
        return self.decision in ("attach", "both")


class FileNumberSetting(_Strict):
    """Who gives the route's applications their Aktenzeichen, when not the hub (see `hub.pipeline`).

    `assigned_by`: a target of the route (a Fachverfahren) whose number, given with its delivery or in
    its first answer with a case number, becomes the Aktenzeichen; the hub draws none, and the other
    targets and the receipts wait for it.
    """

    assigned_by: str = Field(description="the target in `to` that assigns the Aktenzeichen")


class RouteConfig(BaseModel):
    """A route: which source and service go through which steps to which targets."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    from_: str = Field(alias="from")
    when: When = Field(default_factory=When)
    identity: IdentityRequirement | None = None
    map: Path | None = None
    to: list[str] = Field(min_length=1)
    # target -> the targets of `to` delivered before it (e.g. a Fachverfahren after the e-file, so that
    # its import names the Akte's object id); targets without an order are delivered in parallel.
    after: dict[str, Annotated[list[str], BeforeValidator(_as_list)]] = Field(default_factory=dict)
    notify: list[str] = Field(default_factory=list)
    on_answer: OnAnswer | None = None
    file_number: FileNumberSetting | None = None

    @property
    def assigner(self) -> str | None:
        """The target that assigns the Aktenzeichen (None: the hub decides it, see `hub.pipeline`)."""
        return self.file_number.assigned_by if self.file_number is not None else None

    @model_validator(mode="after")
    def _delivery_order(self) -> RouteConfig:
        for target, before in self.after.items():
            unknown = [t for t in (target, *before) if t not in self.to]
            if unknown:
                raise ValueError(f"after: {', '.join(unknown)} not among the route's targets (`to`)")
        try:
            self.stages()
        except CycleError:
            raise ValueError("after: the targets wait for each other (a cycle)") from None
        return self

    def stages(self) -> list[list[str]]:
        """The targets in delivery order: each stage starts once every target of the one before is done."""
        level: dict[str, int] = {}
        graph = {target: self.after.get(target, []) for target in self.to}
        for target in TopologicalSorter(graph).static_order():
            level[target] = 1 + max((level[t] for t in graph[target]), default=-1)
        return [[t for t in self.to if level[t] == n] for n in range(max(level.values()) + 1)]


class RetentionPolicy(_Strict):
    """How long the payload of a route's or service's finished applications is kept (hub.retention)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="shown on every application it purges")
    route: Annotated[list[str], BeforeValidator(_as_list)] = Field(
        default_factory=list, description="the routes it applies to (none: any route)"
    )
    service: Annotated[list[str], BeforeValidator(_as_list)] = Field(
        default_factory=list, description="the services it applies to (none: any service)"
    )
    days: float = Field(
        ge=0, description="days after an application last changed in a final state until its payload goes"
    )

    def matches(self, route: str | None, service: str) -> bool:
        """Whether an application of this route and service falls under this policy."""
        return (not self.route or route in self.route) and (not self.service or service in self.service)


class RetentionConfig(_Strict):
    """Retention of finished applications' payloads: the first policy that matches applies."""

    policies: list[RetentionPolicy] = Field(default_factory=list)
    scheduled: bool = Field(True, description="false: only `aktenhub purge` purges")
    interval_seconds: float = Field(
        3600.0, gt=0, description="how often the running hub purges what is due (also at start)"
    )
    batch_size: int = Field(
        100,
        ge=1,
        le=10000,
        description="applications per journal transaction (the writer serves others between them)",
    )

    def policy_for(self, route: str | None, service: str) -> RetentionPolicy | None:
        """The policy an application of this route and service is kept by (None: kept for good)."""
        return next((p for p in self.policies if p.matches(route, service)), None)


class HubConfig(_Strict):
    """The whole configuration file."""

    store: str = "sqlite:///./data/journal.db"
    blobs: BlobsConfig
    schemas: Path | None = None
    server: ServerConfig = Field(default_factory=lambda: ServerConfig())
    intake: IntakeConfig = Field(default_factory=lambda: IntakeConfig())
    workers: WorkersConfig = Field(default_factory=lambda: WorkersConfig())
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    audit: AuditConfig | None = Field(None, description="export of journal events as JSON lines")
    retention: RetentionConfig | None = Field(None, description="purge of finished applications' payloads")
    certificates: CertificatesConfig = Field(
        default_factory=lambda: CertificatesConfig(),
        description="expiry warnings and the core's own certificates",
    )
    alerts: AlertsConfig | None = Field(
        None, description="mails on dead applications and expiring certificates"
    )
    console: ConsoleConfig = Field(
        default_factory=lambda: ConsoleConfig(), description="the operator console at /ui/"
    )

    @field_validator("blobs", mode="before")
    @classmethod
    def _blobs_path(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @property
    def roles(self) -> tuple[ProcessRole, ...]:
        """What this process does besides the admin API, the console and /metrics (none: only those)."""
        enabled = {"intake": self.intake.enabled, "workers": self.workers.enabled}
        return tuple(role for role in PROCESS_ROLES if enabled[role])


class Configuration:
    """A validated configuration with its connector settings typed by their plugins."""

    def __init__(
        self,
        hub: HubConfig,
        connectors: dict[str, ConnectorConfig],
        source: str,
        mappings: dict[str, MappingFile] | None = None,
    ) -> None:
        self.hub = hub
        self.connectors = connectors
        self.source = source  # file name, for messages
        self.mappings = mappings or {}  # route name -> its compiled mapping file

    @property
    def schemas(self) -> Path | None:
        """The schema directory: `schemas:` as configured, else what `hub.schemas` finds (None: none)."""
        if self.hub.schemas is not None:
            return self.hub.schemas  # as configured, so that what needs it names the missing directory
        return schema_directory()


# -- loading ---------------------------------------------------------------------------------------


def load_config(path: Path | str, plugins: Plugins, env: dict[str, str] | None = None) -> Configuration:
    """Read, substitute and validate a configuration file; raise `ConfigError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the configuration: {exc.strerror}"]) from None
    return parse_config(text, str(path), plugins, env, base_dir=path.parent)


def config_from_dict(
    settings: dict[str, Any], plugins: Plugins, env: dict[str, str] | None = None, source: str = "<generated>"
) -> Configuration:
    """Validate a configuration built in code (demo, tests) exactly as if it were read from YAML."""
    return parse_config(yaml.safe_dump(settings, allow_unicode=True), source, plugins, env)


def parse_config(
    text: str,
    source: str,
    plugins: Plugins,
    env: dict[str, str] | None = None,
    base_dir: Path | None = None,
) -> Configuration:
    """Validate configuration text (`source` names it in messages).

    Mapping files named by routes are read relative to `base_dir` (the configuration file's
    directory; the working directory for configurations built in code).
    """
    env = dict(os.environ) if env is None else env
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError([f"{source}{where}: not valid YAML: {exc}"]) from None
    lines = line_map(node) if node is not None else {}
    problems: list[str] = []

    def at(loc: KeyPath) -> str:
        line = nearest_line(lines, loc)
        return f"{source}:{line}" if line else source

    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: expected a mapping with store, blobs, connectors, routes"])
    missing: dict[KeyPath, str] = {}
    written = raw  # as in the file: where a secret must be a reference, not the secret
    raw = _substitute(raw, (), env, missing)
    for key_path, name in missing.items():
        problems.append(f"{at(key_path)}: {dotted(key_path)}: environment variable {name} is not set")
    unset = {dotted(key_path) for key_path in missing}  # their follow-on validation errors are noise

    hub: HubConfig | None = None
    try:
        hub = HubConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(exc, (), at, unset))

    # Connector settings are checked even when the rest is invalid: one run shows every problem.
    connectors: dict[str, ConnectorConfig] = {}
    roles: dict[str, str] = {}
    updaters: set[str] = set()  # sinks that can update an Akte (`on_answer.update_akte`)
    payload_models: dict[str, type[BaseModel] | None] = {}
    raw_connectors = raw.get("connectors") or {}
    for name, settings in raw_connectors.items() if isinstance(raw_connectors, dict) else ():
        loc: KeyPath = ("connectors", name)
        if not isinstance(settings, dict) or "type" not in settings:
            problems.append(f"{at(loc)}: {dotted(loc)}: expected a mapping with `type:`")
            continue
        try:
            cls = plugins.connector_type(str(settings["type"]))
        except PluginError as exc:
            problems.append(f"{at((*loc, 'type'))}: {dotted((*loc, 'type'))}: {exc}")
            continue
        roles[name] = cls.role
        if _updates_akte(cls):
            updaters.add(name)
        payload_models[name] = cls.Payload if issubclass(cls, Sink) else None
        try:
            context = {BASE_DIR: base_dir} if base_dir is not None else None
            connectors[name] = cls.Config.model_validate(settings, context=context)
        except ValidationError as exc:
            problems.extend(_describe(exc, loc, at, unset))
    if hub is None:
        raise ConfigError(problems)

    for i, route in enumerate(hub.routes):
        loc = ("routes", i)
        _expect_role(roles, route.from_, "source", (*loc, "from"), problems, at)
        for j, target in enumerate(route.to):
            _expect_role(roles, target, "sink", (*loc, "to", j), problems, at)
        for j, notifier in enumerate(route.notify):
            _expect_role(roles, notifier, "notifier", (*loc, "notify", j), problems, at)
        if route.identity is not None:
            _expect_role(roles, route.identity.via, "identity", (*loc, "identity", "via"), problems, at)
        if route.on_answer is not None:
            _check_on_answer(route.on_answer, roles, updaters, (*loc, "on_answer"), problems, at)
        if route.assigner is not None and route.assigner not in route.to:
            assigned_by: KeyPath = (*loc, "file_number", "assigned_by")
            problems.append(
                f"{at(assigned_by)}: {dotted(assigned_by)}: {route.assigner!r} is not a target of this route "
                f"(to: {', '.join(route.to)}): only a target the application is delivered to can assign "
                "its Aktenzeichen"
            )
    names = [r.name for r in hub.routes]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append(f"{at(('routes', i, 'name'))}: routes[{i}].name: {name!r} is used twice")
    if hub.retention is not None:
        problems.extend(_retention_problems(hub.retention, hub.routes, at))
    if hub.alerts is not None:
        problems.extend(_alerts_problems(hub.alerts, written["alerts"], hub.routes, at))
    mappings: dict[str, MappingFile] = {}
    filters = plugins.mapping_filters()
    for i, route in enumerate(hub.routes):
        targets = {t: payload_models.get(t) for t in route.to}
        if route.map is None:
            problems.extend(_payloads_without_mapping(targets, ("routes", i), at))
            continue
        path = route.map if route.map.is_absolute() or base_dir is None else base_dir / route.map
        try:
            mappings[route.name] = load_mapping(path, filters)
        except MappingLoadError as exc:
            problems.extend(f"{at(('routes', i, 'map'))}: routes[{i}].map: {p}" for p in exc.problems)
            continue
        found = mappings[route.name].payload_problems(targets)
        problems.extend(f"{at(('routes', i, 'map'))}: routes[{i}].map: {p}" for p in found)
        if route.assigner is not None and mappings[route.name].spec.file_number is not None:
            # Refused rather than ignored: an operator reading the mapping would expect its numbers.
            problems.append(
                f"{at(('routes', i, 'map'))}: routes[{i}].map: {path} has a file_number pattern, but "
                f"{route.assigner!r} assigns this route's Aktenzeichen (routes[{i}].file_number): remove "
                "the pattern from the mapping, or the setting from the route"
            )
    if problems:
        raise ConfigError(problems)
    return Configuration(hub, connectors, source, mappings)


def _retention_problems(retention: RetentionConfig, routes: list[RouteConfig], at: Any) -> list[str]:
    """Policies naming unknown routes or services, names used twice, policies a catch-all hides."""
    problems = []
    seen: set[str] = set()
    catch_all: int | None = None
    route_names = {route.name for route in routes}
    services = route_services(routes)
    for i, policy in enumerate(retention.policies):
        loc: KeyPath = ("retention", "policies", i)
        problems += _unknown(
            policy.route, route_names, (*loc, "route"), "no route named {!r} (routes: {})", at
        )
        if services is not None:  # else some route takes every service: any name may come
            message = "no route takes service {!r} (services: {})"
            problems += _unknown(policy.service, services, (*loc, "service"), message, at)
        if policy.name in seen:
            problems.append(f"{at((*loc, 'name'))}: {dotted((*loc, 'name'))}: {policy.name!r} is used twice")
        seen.add(policy.name)
        if catch_all is not None:
            problems.append(
                f"{at(loc)}: {dotted(loc)}: never applies: policies[{catch_all}] before it takes every "
                "application (the first policy that matches applies)"
            )
        elif not policy.route and not policy.service:
            catch_all = i
    return problems


def _alerts_problems(alerts: AlertsConfig, raw: Any, routes: list[RouteConfig], at: Any) -> list[str]:
    """Addresses for unknown routes; an SMTP password written into the file instead of a ${ENV} reference."""
    problems = []
    route_names = {route.name for route in routes}
    for name in alerts.routes:
        if name not in route_names:
            loc: KeyPath = ("alerts", "routes", name)
            listed = ", ".join(sorted(route_names)) or "none configured"
            problems.append(f"{at(loc)}: {dotted(loc)}: no route named {name!r} (routes: {listed})")
    password = raw.get("smtp", {}).get("password") if isinstance(raw, dict) else None
    if isinstance(password, str) and not ENV_REF.fullmatch(password.strip()):
        loc = ("alerts", "smtp", "password")
        problems.append(
            f"{at(loc)}: {dotted(loc)}: expected a ${{ENV_NAME}} reference, not the password itself"
        )
    return problems


def route_services(routes: list[RouteConfig]) -> set[str] | None:
    """The services the routes take (`when.service`); None when a route takes every service."""
    services: set[str] = set()
    for route in routes:
        if route.when.service is None:
            return None
        services.update(_as_list(route.when.service))
    return services


def _unknown(names: list[str], known: set[str], loc: KeyPath, message: str, at: Any) -> list[str]:
    """`message` (formatted with the name and the known ones) for each name not known."""
    problems = []
    for j, name in enumerate(names):
        if name not in known:
            where = (*loc, j) if len(names) > 1 else loc
            listed = ", ".join(sorted(known)) or "none configured"
            problems.append(f"{at(where)}: {dotted(where)}: {message.format(name, listed)}")
    return problems


def _updates_akte(cls: type[Any]) -> bool:
    return issubclass(cls, Sink) and cls.record_answer is not Sink.record_answer


def _check_on_answer(
    on_answer: OnAnswer,
    roles: dict[str, str],
    updaters: set[str],
    loc: KeyPath,
    problems: list[str],
    at: Any,
) -> None:
    if on_answer.update_akte is not None:
        where = (*loc, "update_akte")
        _expect_role(roles, on_answer.update_akte, "sink", where, problems, at)
        if roles.get(on_answer.update_akte) == "sink" and on_answer.update_akte not in updaters:
            problems.append(
                f"{at(where)}: {dotted(where)}: {on_answer.update_akte!r} cannot update an Akte "
                f"(e-file targets that can: {', '.join(sorted(updaters)) or 'none configured'})"
            )
    for j, notifier in enumerate(on_answer.notify):
        _expect_role(roles, notifier, "notifier", (*loc, "notify", j), problems, at)


def _payloads_without_mapping(targets: PayloadModels, loc: KeyPath, at: Any) -> list[str]:
    """A route without a mapping file gives its targets empty payloads: refuse targets that need one."""
    problems = []
    for target, model in targets.items():
        try:
            if model is not None:
                model.model_validate({})
        except ValidationError as exc:
            needed = ", ".join(dotted(tuple(e["loc"])) for e in exc.errors(include_url=False))
            problems.append(
                f"{at((*loc, 'to'))}: {dotted((*loc, 'to'))}: target {target!r} needs `payloads.{target}` "
                f"({needed}) from a mapping file, and this route has no `map`"
            )
    return problems


def _expect_role(
    roles: dict[str, str], name: str, role: str, loc: KeyPath, problems: list[str], at: Any
) -> None:
    if name not in roles:
        known = ", ".join(n for n, r in roles.items() if r == role) or "none configured"
        problems.append(f"{at(loc)}: {dotted(loc)}: no connector named {name!r} ({role}s: {known})")
    elif roles[name] != role:
        problems.append(f"{at(loc)}: {dotted(loc)}: {name!r} is a {roles[name]}, expected a {role}")


def _substitute(value: Any, loc: KeyPath, env: dict[str, str], missing: dict[KeyPath, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*loc, k), env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*loc, i), env, missing) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def replace(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                missing[loc] = m.group(1)
                return ""
            return env[m.group(1)]

        return ENV_REF.sub(replace, value)
    return value


def _describe(exc: ValidationError, prefix: KeyPath, at: Any, skip: set[str]) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *(p for p in err["loc"] if not (isinstance(p, str) and "[" in p)))
        loc = tuple("from" if p == "from_" else p for p in loc)
        if dotted(loc) in skip:  # already reported: its environment variable is not set
            continue
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config/aktenhub.example.yaml)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        got = err.get("input")
        shown = (
            ""
            if err["type"] in ("missing", "extra_forbidden") or _secretish(loc)
            else (f" (got {got!r})" if isinstance(got, str | int | float | bool) else "")
        )
        out.append(f"{at(loc)}: {dotted(loc)}: {msg}{shown}")
    return out


def _secretish(loc: KeyPath) -> bool:
    return any(
        isinstance(p, str) and any(s in p.lower() for s in ("token", "password", "secret", "key"))
        for p in loc
    )
