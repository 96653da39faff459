"""The built-in ``s3`` backup target (any S3-compatible store), whose server's owner is not trusted."""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

from vault.errors import InputError, IntegrityError, NotFoundError, PluginError
from vault.i18n import N_
from vault_plugins.objectnames import check_name
from vault_plugins.s3pace import pace, paced_pools


def _line(text: Any) -> str:
    """What a server said, as one short line (it chooses the text: newlines and length included)."""
    return " ".join(str(text).split())[:200]


class _S3Body(io.RawIOBase):
    """An object's body read as it arrives, so a restore can stream a large blob; errors as PluginError
    naming the object (one cut short of its length among them)."""

    def __init__(self, target: "S3Target", name: str, body: Any) -> None:
        self._target, self._name, self._body = target, name, body

    def readable(self) -> bool:
        return True

    def _read(self, *n: int) -> bytes:
        from botocore.exceptions import BotoCoreError

        pace.over = None
        try:
            return self._body.read(*n)
        except BotoCoreError as exc:
            if pace.over is not None:
                error = PluginError(N_("{url}: {name}: timeout: the server took more than {seconds} s to send it"),
                                    hint=N_("check the endpoint and the network"), url=self._target.url, name=self._name,
                                    seconds=pace.over)
                self._target._note_down(exc, error)
                raise error from None
            self._target._note_down(exc)
            raise PluginError(N_("{url}: {name}: {exc}"), hint=N_("check the endpoint and the network"),
                              url=self._target.url, name=self._name, exc=_line(exc)) from None

    def readinto(self, buffer: Any, /) -> int:
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self._read()

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


#: Seconds an S3 request waits for a connection, or for the next bytes of an answer, before it is
#: given up (``?timeout=`` sets it; and in all, see ``S3_MIN_RATE``), and how many times a request
#: is tried in all: a server that accepts and never answers ends a command in about
#: ``S3_ATTEMPTS`` x the timeout (boto3's own defaults, 60 s and 5 tries, made that minutes a request).
S3_TIMEOUT, S3_ATTEMPTS = 20.0, 3
#: The most objects one listing (one prefix: ``data/``, ``index/``, …) may name: two million
#: packs are terabytes; a server that lists without end is stopped here, its names held so far
#: about 200 MB.
S3_LIST_MAX = 2_000_000
_MISSING = ("NoSuchKey", "404", "NotFound")
_EXISTS = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
_NO_CONDITION = ("NotImplemented", "501", "InvalidArgument")
_NOT_S3 = N_("the server does not answer as S3 does: check the endpoint, and who runs it")


def _valid(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True


class S3Target:
    """Objects in an S3 bucket under a prefix: ``s3://bucket/prefix[?endpoint=URL&region=NAME&timeout=S]``.

    Credentials come from the usual AWS sources (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    profiles, instance roles), never from the URL; the endpoint from ``?endpoint=`` or
    ``AWS_ENDPOINT_URL``; the region from ``?region=`` or ``AWS_DEFAULT_REGION``; ``?timeout=`` the
    seconds a request waits (``S3_TIMEOUT``, and ``S3_MIN_RATE`` for its whole). The server's owner
    is not trusted: what it answers is checked before the engine sees it, and how long it takes is
    bounded.
    """

    def __init__(self, url: str) -> None:
        # boto3 costs ~135 ms to import: only a run that uses S3 pays for it.
        import boto3
        from botocore.config import Config

        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or "@" in parts.netloc:
            raise InputError(N_("bad s3 target {url!r}"), hint=N_("write s3://bucket/prefix; credentials go in AWS_* variables"), url=url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region", "timeout"}
        if unknown:
            raise InputError(N_("s3 target: unknown option {unknown!r}"), hint=N_("options: endpoint, region, timeout"), unknown=sorted(unknown)[0])
        try:
            timeout = float(query.get("timeout", S3_TIMEOUT))
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 3600:
            raise InputError(N_("s3 target: bad timeout {value!r}"), hint=N_("give seconds, more than 0 and at most 3600"),
                             value=query["timeout"])
        self.url = url
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""
        self.client = boto3.client(
            "s3",
            endpoint_url=query.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL") or None,
            region_name=query.get("region") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=Config(retries={"total_max_attempts": S3_ATTEMPTS, "mode": "standard"}, max_pool_connections=16,
                          connect_timeout=timeout, read_timeout=timeout),
        )
        # botocore's read timeout is a wait for the next bytes, however few: its sockets are paced
        # so that a request also ends within its bound (``S3_MIN_RATE``).
        self.client._endpoint.http_session._pool_classes_by_scheme.update(paced_pools())
        self.timeout = timeout
        self._conditional = True
        self._down: PluginError | None = None  # what the server failed with, once it timed out or was not there

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    def _call(self, fn: Callable[..., Any], *args: Any, expect: tuple[str, ...] = (), carries: bool = False,
              **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, its errors as one line each: an error answer whose code is in
        ``expect`` is raised as the ``ClientError`` it is, for the caller to handle; any other, of
        whatever shape the server gave it, becomes a ``PluginError`` naming the code. Each try waits
        on the server within its bound (``S3_MIN_RATE``; ``carries``: the answer's body is an
        object, read on after the call)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if self._down is not None:
            raise PluginError.from_error(self._down)
        pace.plan, pace.over = (self.timeout, carries), None
        try:
            return fn(*args, **kwargs)
        except NoCredentialsError:
            raise PluginError(N_("{url}: no AWS credentials"),
                              hint=N_("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"), url=self.url) from None
        except ClientError as exc:
            if self._code(exc) in expect:
                raise
            error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "") if isinstance(exc.response, dict) else ""
            raise PluginError(N_("{url}: the server refused {operation}: {error} {message}"),
                              hint=N_("check the endpoint, the bucket and the credentials"), url=self.url,
                              operation=_line(getattr(exc, "operation_name", "")), error=_line(error.get("Code") or status),
                              message=_line(error.get("Message", ""))) from None
        except BotoCoreError as exc:
            if pace.over is not None:
                error = PluginError(N_("{url}: timeout: the server took more than {seconds} s over {operation}"),
                                    hint=N_("check the endpoint and the network"), url=self.url, seconds=pace.over,
                                    operation=self.client.meta.method_to_api_mapping.get(fn.__name__, fn.__name__))
                self._note_down(exc, error)
                raise error from None
            self._note_down(exc)
            raise PluginError(N_("{url}: {exc}"), hint=N_("check the endpoint and the network"), url=self.url, exc=_line(exc)) from None
        finally:
            pace.plan = None

    def _note_down(self, exc: Exception, error: PluginError | None = None) -> None:
        """A request that timed out or found no server, after its tries: the target asks nothing more
        in this command and answers each later call with the same error at once — else a verify that
        names each object's failure as a problem and goes on would wait the timeout for every one.
        ``error``: the request was given up over its bound, and this says so."""
        from botocore.exceptions import ConnectionClosedError, ConnectionError, ReadTimeoutError

        if error is None and isinstance(exc, (ConnectionError, ReadTimeoutError, ConnectionClosedError)):
            error = PluginError(N_("{url}: {exc}"), hint=N_("check the endpoint and the network"), url=self.url, exc=_line(exc))
        if error is not None:
            self._down = error

    @staticmethod
    def _code(exc: Any) -> str:
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        return str(error.get("Code", "") if isinstance(error, dict) else "")

    def put(self, name: str, data: BinaryIO, *, create_only: bool = False) -> None:
        from botocore.exceptions import ClientError

        key, body = self._key(name), data.read()
        if create_only and self._conditional:
            try:
                self._call(self.client.put_object, Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*",
                           expect=_EXISTS + _NO_CONDITION)
                return
            except ClientError as exc:
                code = self._code(exc)
                if code in _EXISTS:
                    return  # already there: content-addressed names hold the same bytes
                self._conditional = False  # a store without conditional writes: check, then put
        if create_only and self.exists(name):
            return
        self._call(self.client.put_object, Bucket=self.bucket, Key=key, Body=body)

    def get(self, name: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            resp = self._call(self.client.get_object, Bucket=self.bucket, Key=self._key(name), expect=_MISSING, carries=True)
        except ClientError:
            raise NotFoundError(N_("{url}: no object {name}"), url=self.url, name=name) from None
        if type(resp.get("ContentLength")) is not int:
            # botocore stops a body at its Content-Length (and names one cut short); without it, the
            # server could send for ever.
            resp["Body"].close()
            raise IntegrityError(N_("{url}: the server sent {name} without its length"), hint=_NOT_S3, url=self.url, name=name)
        return io.BufferedReader(_S3Body(self, name, resp["Body"]), 1 << 20)

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._call(self.client.head_object, Bucket=self.bucket, Key=self._key(name), expect=_MISSING)
            return True
        except ClientError:
            return False

    def list(self, prefix: str = "") -> Iterator[str]:
        # Pages are asked for one by one: the server's owner may answer with keys outside the prefix
        # or no object names, the same page again, or pages without end.
        want, names, tokens = self.prefix + prefix, set(), set()
        ask: dict[str, Any] = {}
        while True:
            page = self._call(self.client.list_objects_v2, Bucket=self.bucket, Prefix=want, **ask)
            keys = [obj.get("Key") if isinstance(obj, dict) else None for obj in page.get("Contents", [])]
            for key in keys:
                if isinstance(key, str) and key.endswith("/") and key.startswith(want):
                    continue  # a "folder" a console made: no object (a file target lists no directory)
                if not (isinstance(key, str) and key.startswith(want) and _valid(key[len(self.prefix):])):
                    raise IntegrityError(N_("{url}: the server lists {key!r}, which is no object of this target"),
                                         hint=_NOT_S3, url=self.url, key=str(key)[:200])
                if key in names:
                    break
                names.add(key)
            else:
                if len(names) > S3_LIST_MAX:
                    raise IntegrityError(N_("{url}: the server lists more than {count} objects under {prefix!r}"),
                                         hint=_NOT_S3, url=self.url, count=S3_LIST_MAX, prefix=prefix)
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated"):
                    return iter(sorted(key[len(self.prefix):] for key in names))
                if keys and isinstance(token, str) and token and token not in tokens:
                    tokens.add(token)
                    ask = {"ContinuationToken": token}
                    continue
            raise IntegrityError(N_("{url}: the server's listing of {prefix!r} does not move on (a page or name again, or none)"),
                                 hint=_NOT_S3, url=self.url, prefix=prefix)

    def delete(self, name: str) -> None:
        # S3 deletes a missing key silently; the protocol says to name it.
        if not self.exists(name):
            raise NotFoundError(N_("{url}: no object {name}"), url=self.url, name=name)
        self._call(self.client.delete_object, Bucket=self.bucket, Key=self._key(name))
