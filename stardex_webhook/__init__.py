"""stardex-webhook: verified ATS and form webhooks in, Stardex person updates out."""

__version__ = "0.1.0"
