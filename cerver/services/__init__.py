"""The gateway's services: what the HTTP API, the client and the CLI stand on."""
