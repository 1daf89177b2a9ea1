#===- CheckLayering.cmake - Fail on a link cycle or an upward dependency --===#
#
# Part of the qc project. MIT licence.
#
# cmake -DGRAPH=<graph.cmake> -DRULES=<layers.cmake> -P CheckLayering.cmake
#
# GRAPH sets QC_GRAPH_NODES (library targets) and, per node N,
# QC_GRAPH_EDGES_<N> (the nodes it links); QCLayering.cmake writes it from
# the targets' LINK_LIBRARIES at configure time. RULES sets QC_LAYERS
# (cmake/QCLayers.cmake). Reports every library without a layer, every edge
# that points up a layer, and one cycle (named node by node) if the graph
# has any; exits non-zero if it found anything.
#
#===------------------------------------------------------------------------===#

cmake_minimum_required(VERSION 3.20)

if(NOT GRAPH OR NOT RULES)
  message(FATAL_ERROR "usage: cmake -DGRAPH=file -DRULES=file -P ${CMAKE_SCRIPT_MODE_FILE}")
endif()
include("${GRAPH}")
include("${RULES}")

set(problems 0)

# Layer index of every listed target.
set(index 0)
set(layer_names "")
foreach(entry IN LISTS QC_LAYERS)
  string(REGEX MATCH "^([^:]+):(.*)$" _ "${entry}")
  set(name "${CMAKE_MATCH_1}")
  string(REGEX REPLACE "[ \t\r\n]+" ";" members "${CMAKE_MATCH_2}")
  list(APPEND layer_names "${name}")
  foreach(t IN LISTS members)
    if(t STREQUAL "")
      continue()
    endif()
    set(layer_of_${t} ${index})
    set(layer_name_of_${t} "${name}")
  endforeach()
  math(EXPR index "${index} + 1")
endforeach()

foreach(n IN LISTS QC_GRAPH_NODES)
  if(NOT DEFINED layer_of_${n})
    message("layering: library '${n}' has no layer in cmake/QCLayers.cmake")
    math(EXPR problems "${problems} + 1")
  endif()
endforeach()

# Upward edges.
foreach(n IN LISTS QC_GRAPH_NODES)
  if(NOT DEFINED layer_of_${n})
    continue()
  endif()
  foreach(d IN LISTS QC_GRAPH_EDGES_${n})
    if(DEFINED layer_of_${d} AND layer_of_${d} GREATER layer_of_${n})
      message("layering: ${n} (layer '${layer_name_of_${n}}') links ${d} "
              "(layer '${layer_name_of_${d}}', above it): dependencies must "
              "point down")
      math(EXPR problems "${problems} + 1")
    endif()
  endforeach()
endforeach()

# Cycles: strip nodes with no edge into the remaining graph until none is
# left; whatever remains lies on or leads to a cycle, and following edges
# inside it from any remaining node must come back to a node already seen.
set(remaining ${QC_GRAPH_NODES})
set(changed TRUE)
while(changed)
  set(changed FALSE)
  set(next "")
  foreach(n IN LISTS remaining)
    set(sink TRUE)
    foreach(d IN LISTS QC_GRAPH_EDGES_${n})
      if(d IN_LIST remaining)
        set(sink FALSE)
        break()
      endif()
    endforeach()
    if(sink)
      set(changed TRUE)
    else()
      list(APPEND next "${n}")
    endif()
  endforeach()
  set(remaining ${next})
endwhile()
if(remaining)
  list(GET remaining 0 n)
  set(path "")
  while(NOT n IN_LIST path)
    list(APPEND path "${n}")
    foreach(d IN LISTS QC_GRAPH_EDGES_${n})
      if(d IN_LIST remaining)
        set(n "${d}")
        break()
      endif()
    endforeach()
  endwhile()
  list(FIND path "${n}" start)
  list(SUBLIST path ${start} -1 cycle)
  list(APPEND cycle "${n}")
  list(JOIN cycle " -> " text)
  message("layering: link cycle: ${text}")
  math(EXPR problems "${problems} + 1")
endif()

list(LENGTH QC_GRAPH_NODES count)
if(problems GREATER 0)
  message(FATAL_ERROR "layering: ${problems} problem(s) in the link graph of "
                      "${count} libraries")
endif()
message("layering: ${count} libraries, no cycle, every dependency points down")
