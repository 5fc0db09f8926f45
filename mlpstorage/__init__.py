"""mlpstorage: a launcher for the MLPerf Storage benchmark whose whole lifecycle is observable."""

__version__ = "0.1.0"
