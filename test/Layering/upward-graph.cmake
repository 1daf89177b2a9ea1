# An acyclic graph with one upward edge: Import links Pipelines.
set(QC_GRAPH_NODES Runtime Import Pipelines)
set(QC_GRAPH_EDGES_Runtime)
set(QC_GRAPH_EDGES_Import Runtime Pipelines)
set(QC_GRAPH_EDGES_Pipelines Runtime)
