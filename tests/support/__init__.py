"""The test bench: a throwaway registry, OCI images built in Python, a systemd test host."""
