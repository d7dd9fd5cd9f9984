"""--tls-cert / --tls-key: both ports speak TLS with the given certificate."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import RunningServer, free_port


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _request(trace_id: bytes) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = trace_id
    span.span_id = b"\x01" * 8
    span.name = "tls"
    span.start_time_unix_nano = 1_700_000_000_000_000_000
    span.end_time_unix_nano = 1_700_000_000_100_000_000
    return req


def test_tls_on_both_ports(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = _self_signed(tmp_path)
    server: RunningServer = make_server(
        args=["--tls-cert", str(cert), "--tls-key", str(key)], start=False
    )
    server.ready_url = f"https://127.0.0.1:{server.http_port}/ready"
    ctx = ssl.create_default_context(cafile=str(cert))
    server.verify = ctx
    server.start()
    https = f"https://127.0.0.1:{server.http_port}"
    body = _request(b"\x0a" * 16).SerializeToString()
    r = httpx.post(
        f"{https}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
        verify=ctx,
    )
    assert r.status_code == 200
    # Plain HTTP on the TLS port is not served.
    try:
        plain = httpx.get(f"http://127.0.0.1:{server.http_port}/ready", timeout=3)
        assert plain.status_code != 200
    except httpx.HTTPError:
        pass

    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with grpc.secure_channel(server.grpc_target, creds) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=ExportTraceServiceRequest.SerializeToString,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        export(_request(b"\x0b" * 16), timeout=10)

    for tid in ("0a" * 16, "0b" * 16):
        r = httpx.get(f"{https}/api/traces/{tid}", verify=ctx)
        assert r.status_code == 200, r.text
        assert r.json()["spans"][0]["name"] == "tls"
    assert server.stop() == 0


def test_unusable_certificate_or_key_is_one_line(tmp_path: Path) -> None:
    """A missing file, a file that is no PEM, and a key of another certificate: one line
    that names the files, before any port is taken."""
    cert, key = _self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = _self_signed(other)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = [
        (str(tmp_path / "missing.pem"), str(key), "cannot read"),
        (str(junk), str(junk), "not a PEM certificate and its private key"),
        (str(cert), str(other_key), "not a PEM certificate and its private key"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
    for cert_arg, key_arg, expected in cases:
        done = subprocess.run(
            [sys.executable, "-m", "otterscope", "serve", "--data-dir", str(tmp_path / "d")]
            + ["--http-port", str(free_port()), "--grpc-port", str(free_port())]
            + ["--tls-cert", cert_arg, "--tls-key", key_arg],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and "--tls-" in lines[0], lines
