"""Table area where the stub places task objects (x, y, z), reachable from the tip's start."""

TABLE_LOW = (0.1, -0.2, 0.78)
TABLE_HIGH = (0.4, 0.2, 0.80)
