"""Form bodies as form servers send them, for every source that takes them (toolkit module).

- `hub.formdata.multipart`: ``multipart/form-data`` streamed (files straight into the blob store, hashed
  and size-checked on the way) and ``application/x-www-form-urlencoded``; `read_body` for a whole
  bounded body; `content_type_of` for a request's media type and charset.
- `hub.formdata.jsonbody`: a strict JSON body (RFC 8259: UTF-8, no duplicate members, no NaN, bounded
  nesting) as form data, base64 attachments decoded into the blob store.
- `hub.formdata.submission`: `Submission` (fields and attachments) and its canonical JSON, and the
  checks every name, value and file name passes (`safe_filename`, `media_type_of`, `show`).
- `hub.formdata.charsets`: character set labels read the WHATWG way.
- `hub.formdata.applicant`: `ApplicantFields`, which element holds which applicant attribute.
- `hub.formdata.limits`: `FormLimits`, the settings bounding a submission (a source's `Config` extends it).

Error messages name parameters and limits, never values or file names: they end up in logs.
"""
