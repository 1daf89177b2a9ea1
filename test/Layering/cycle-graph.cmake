# The cycle issue 12 removed: Import -> Pipelines -> Transforms -> Import.
set(QC_GRAPH_NODES Runtime Import Pipelines Transforms)
set(QC_GRAPH_EDGES_Runtime)
set(QC_GRAPH_EDGES_Import Runtime Pipelines)
set(QC_GRAPH_EDGES_Pipelines Transforms Runtime)
set(QC_GRAPH_EDGES_Transforms Import Runtime)
