"""The operations, grouped by aggregate. Each takes a SQLAlchemy Session and never commits:
the unit of work in `db` owns the transaction, which is what makes calls composable."""
