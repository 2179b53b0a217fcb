"""Generic Fachverfahren transports: reach a specialist system by configuration, and hear back.

Each transport is a connector type (a sink that can also receive answers) with a strict simulator:
`rest` (OpenAPI-described JSON), `soap` (one WSDL operation), `sql` (a staging table), `importfolder`
(files plus a manifest), `xoev` (an XÖV message over XTA).
"""
