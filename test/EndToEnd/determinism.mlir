// End-to-end: calibration and quantization of the shared stories260K
// model, run twice, give identical bytes.

// Tests that quantization is reproducible: calibrating and quantizing twice
// gives byte-identical traces, overlays and IR (no hidden randomness, no
// thread-order dependence).

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: quant-calibrate %t.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 2044 --no-progress -o %t.a.trace
// RUN: quant-calibrate %t.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 2044 --no-progress -o %t.b.trace
// RUN: cmp %t.a.trace %t.b.trace
// RUN: quant-opt %t.mlir -wq-gptq="bits=3 group-size=32 sym=false act-order=true layout=rows trace=%t.a.trace weights-out=%t.a.st" | sed -e 's/\.a\.st/.X.st/' > %t.a.out
// RUN: quant-opt %t.mlir -wq-gptq="bits=3 group-size=32 sym=false act-order=true layout=rows trace=%t.a.trace weights-out=%t.b.st" | sed -e 's/\.b\.st/.X.st/' > %t.b.out
// RUN: cmp %t.a.st %t.b.st
// RUN: cmp %t.a.out %t.b.out
// RUN: quant-opt %t.mlir -wq-hqq="weights-out=%t.c.st" -o /dev/null
// RUN: quant-opt %t.mlir -wq-hqq="weights-out=%t.d.st" -o /dev/null
// RUN: cmp %t.c.st %t.d.st
// RUN: quant-opt %t.mlir -wq-nf4="weights-out=%t.e.st" -o /dev/null
// RUN: quant-opt %t.mlir -wq-nf4="weights-out=%t.f.st" -o /dev/null
// RUN: cmp %t.e.st %t.f.st
