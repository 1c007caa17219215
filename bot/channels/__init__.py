"""Channel adapters: each translates one platform's wire format to `Inbound` and back."""
