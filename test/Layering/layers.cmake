# Layer rules for the checker's own tests (cmake/QCLayering.cmake).
set(QC_LAYERS
  "base: Runtime"
  "import: Import"
  "transforms: Transforms"
  "pipelines: Pipelines")
