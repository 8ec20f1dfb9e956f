"""Content credentials (C2PA): manifests signed here with a throwaway certificate (valid,
tampered, absent), read beside the score and never changing it."""

import datetime
import io

import numpy as np
import pytest
from PIL import Image

c2pa = pytest.importorskip("c2pa", reason="c2pa-python (the [c2pa] extra) is not installed")
x509 = pytest.importorskip("cryptography.x509", reason="cryptography is not installed: nothing can be signed")

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402
from serve_harness import first_frame_png  # noqa: E402

import pycrl  # noqa: E402
from pycrl.provenance import IPTC, CredentialsReader  # noqa: E402


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pycrl tests")])


def _usage(**on):
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


@pytest.fixture(scope="module")
def signer():
    """A throwaway root and an ES256 signing certificate it issued, made for this test only."""
    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def cert(subject, issuer, public, signing_key, ca):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=7))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(_usage(key_cert_sign=True, crl_sign=True) if ca else _usage(digital_signature=True),
                            critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))
        if not ca:
            b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                                critical=False))
        return b.sign(signing_key, hashes.SHA256())

    root = cert(_name("pycrl test root"), _name("pycrl test root"), root_key.public_key(), root_key, True)
    leaf = cert(_name("pycrl test signer"), root.subject, key.public_key(), root_key, False)
    chain = leaf.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=private,
                                                     ta_url=None))


def _jpeg_face() -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(first_frame_png())).convert("RGB").save(out, format="JPEG", quality=95)
    return out.getvalue()


def _sign(signer, data: bytes, kind: str, source_type: str, generator="pycrl-test-generator") -> bytes:
    manifest = {"claim_generator_info": [{"name": generator, "version": "2.0"}], "title": "signed in a test",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": IPTC + source_type}]}}]}
    out = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, kind, io.BytesIO(data), out)
    return out.getvalue()


def test_valid_tampered_and_absent(signer):
    plain = _jpeg_face()
    signed = _sign(signer, plain, "image/jpeg", "trainedAlgorithmicMedia")
    read = CredentialsReader()
    valid = read(signed)
    assert valid.state == "valid" and valid.declares == "ai-generated"
    assert valid.claim_generator == "pycrl-test-generator 2.0" and "pycrl test signer" in valid.signer
    assert valid.actions == ["c2pa.created"] and valid.digital_source_types == [IPTC + "trainedAlgorithmicMedia"]
    assert "signingCredential.untrusted" in valid.failures  # our throwaway root is on no trust list
    tampered = bytearray(signed)
    tampered[-300] ^= 0xFF  # one byte of the picture changed after signing
    bad = read(bytes(tampered))
    assert bad.state == "invalid" and "assertion.dataHash.mismatch" in bad.failures
    assert read(plain).state == "absent"
    assert read(b"not a picture at all").state == "unsupported"
    assert read(np.zeros((4, 4, 3), np.uint8)) is None  # pixels have no manifest


@pytest.mark.parametrize("source_type, declared", [("digitalCapture", "captured"), ("humanEdits", "edited"),
                                                   ("compositeWithTrainedAlgorithmicMedia", "ai-edited")])
def test_what_the_content_declares(signer, source_type, declared):
    got = CredentialsReader()(_sign(signer, _jpeg_face(), "image/jpeg", source_type))
    assert got.state == "valid" and got.declares == declared


def test_reported_beside_the_score_never_changing_it(signer, tmp_path):
    plain = _jpeg_face()
    signed = tmp_path / "signed.jpg"
    signed.write_bytes(_sign(signer, plain, "image/jpeg", "trainedAlgorithmicMedia"))
    (tmp_path / "plain.jpg").write_bytes(plain)
    with pycrl.Detector() as det:
        with_manifest, without = det.score_image(signed), det.score_image(tmp_path / "plain.jpg")
    assert with_manifest.status == without.status == "ok"
    assert with_manifest.score == without.score and with_manifest.label == without.label
    assert with_manifest.content_credentials["state"] == "valid"
    assert with_manifest.content_credentials["declares"] == "ai-generated"
    assert without.content_credentials["state"] == "absent"
    assert with_manifest.to_dict()["content_credentials"]["claim_generator"] == "pycrl-test-generator 2.0"
    with pycrl.Detector(content_credentials="off") as det:
        assert det.score_image(signed).content_credentials is None
