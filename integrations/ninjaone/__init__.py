"""NinjaOne RMM: device alerts become tickets, and each organization's devices are counted for its contract."""
