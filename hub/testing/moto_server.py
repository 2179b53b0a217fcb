"""moto's S3 server as the test kit runs it (`hub.testing.s3`): moto, with its upload times made true.

moto (5.x) answers ListMultipartUploads with one constant ``Initiated`` for every upload,
2010-11-10T20:48:33Z. A real store answers when each upload began. The hub's sweep
(`S3Blobs.remove_stale_parts`, at start and every ``sweep_interval_seconds``) aborts the uploads older
than the grace period, as it must; against moto it aborted every upload in flight. A sweep that ran
while an intake's multipart upload was open (under load, the one a hub runs at start met the first
submissions) made that intake fail with NoSuchUpload, and its clean-up warn "abort upload: NoSuchUpload
404". Here each upload keeps the time it was created and the listing answers it.

    python -m hub.testing.moto_server -H 127.0.0.1 -p PORT   (the arguments of ``python -m moto.server``)
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from moto.s3.models import FakeMultipart
from moto.s3.responses import S3Response
from moto.server import main

_UPLOAD = re.compile(r"<Upload>.*?</Upload>", re.S)
_UPLOAD_ID = re.compile(r"<UploadId>(.*?)</UploadId>")
_INITIATED = re.compile(r"<Initiated>[^<]*</Initiated>")
_created = FakeMultipart.__init__
_listed = S3Response.list_multipart_uploads


def _create(self: Any, *args: Any, **kwargs: Any) -> None:
    _created(self, *args, **kwargs)
    self.initiated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _list(self: Any) -> Any:
    """moto's answer, each upload's ``Initiated`` replaced by when it was created."""
    uploads = {u.id: u for u in self.backend.list_multipart_uploads(self.bucket_name).values()}
    status, headers, body = _listed(self)
    text = body.decode() if isinstance(body, bytes) else body

    def timed(upload: re.Match[str]) -> str:
        found = _UPLOAD_ID.search(upload[0])
        if found is None or found[1] not in uploads:
            raise RuntimeError(f"moto listed an upload the test kit cannot date: {upload[0][:200]}")
        initiated = uploads[found[1]].initiated
        return _INITIATED.sub(f"<Initiated>{initiated}</Initiated>", upload[0])

    text = _UPLOAD.sub(timed, text)
    return status, headers, text.encode() if isinstance(body, bytes) else text


FakeMultipart.__init__ = _create  # type: ignore[method-assign]
S3Response.list_multipart_uploads = _list  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
