"""Root pytest configuration: the kernel's fixtures (real nats-server, databases) for every suite."""

pytest_plugins = ["crm_kernel.testing"]
