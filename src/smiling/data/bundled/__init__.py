"""Expert demonstrations shipped with the package (one ``<prefix>-<task>.npz`` per task id)."""
