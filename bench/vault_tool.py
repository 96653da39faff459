"""One encryption or decryption with the vault's age code, as its own process (run by bench_age.py).

    vault_tool.py encrypt RECIPIENT IN OUT          whole age file, vault.crypto.age.encrypt
    vault_tool.py decrypt IDENTITY_FILE IN OUT      whole age file, vault.crypto.age.decrypt
    vault_tool.py payload-encrypt IN OUT            payload layer only, fixed file key
    vault_tool.py payload-decrypt IN OUT            payload layer only, fixed file key
"""

from __future__ import annotations

import sys

# The payload rows isolate the STREAM layer; an all-zero key is fine for timing, never for data.
BENCH_FILE_KEY = bytes(16)


def _identity_text(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return next(line.strip() for line in f if line.startswith("AGE-SECRET-KEY-"))


def main(argv: list[str]) -> None:
    op, *args = argv
    src_path, dst_path = args[-2:]
    # Plain buffered files, as a caller of the library would open them.
    with open(src_path, "rb") as src, open(dst_path, "wb") as dst:
        if op == "encrypt":
            from vault.crypto import age

            age.encrypt(src, dst, [age.parse_recipient(args[0])])
        elif op == "decrypt":
            from vault.crypto import age

            age.decrypt(src, dst, [age.parse_identity(_identity_text(args[0]))])
        elif op == "payload-encrypt":
            from vault.crypto import stream

            stream.encrypt_payload(BENCH_FILE_KEY, src, dst)
        elif op == "payload-decrypt":
            from vault.crypto import stream

            stream.decrypt_payload(BENCH_FILE_KEY, src, dst)
        else:
            raise SystemExit(f"unknown operation {op!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
