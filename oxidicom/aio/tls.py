"""The TLS context of a DICOM TLS listener (PS3.15 Annex B.1, secure transport connection).

Built once at start from the settings. PS3.15 B.1 and its BCP 195 profiles ask for TLS
1.2 or later; Python's default server context already refuses older versions and weak
ciphers. With a client CA, the peer must present a certificate that CA signed (mutual
TLS); without one, any client may connect and only the server is authenticated.
Which AE titles a client certificate may use (``OXIDICOM_TLS_CLIENT_AETS``) is decided
per association from the verified certificate (``peercert``), in :mod:`oxidicom.access`.
"""

from __future__ import annotations

import ssl

from oxidicom.settings import Settings


class TLSSetupError(Exception):
    """The TLS files cannot be used: one line for the operator."""


def server_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context, or None for plain TCP."""
    if settings.tls_certificate is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_certificate, settings.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise TLSSetupError(
            f"cannot use OXIDICOM_TLS_CERTIFICATE={settings.tls_certificate!r}"
            f" / OXIDICOM_TLS_KEY={settings.tls_key!r}: {_reason(error)}"
        ) from error
    if settings.tls_client_ca is not None:
        try:
            context.load_verify_locations(cafile=settings.tls_client_ca)
        except (OSError, ssl.SSLError) as error:
            raise TLSSetupError(
                f"cannot use OXIDICOM_TLS_CLIENT_CA={settings.tls_client_ca!r}: {_reason(error)}"
            ) from error
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(error: OSError | ssl.SSLError) -> str:
    return str(getattr(error, "reason", None) or error.strerror or error)
