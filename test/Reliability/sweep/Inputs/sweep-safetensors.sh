#!/usr/bin/env bash
#===- sweep-safetensors.sh - Corrupt a safetensors checkpoint field by field ===#
#
# Part of the qc project. MIT licence.
#
# Usage: sweep-safetensors.sh fields|cuts QUANT-IMPORT HF-DIR WORK-DIR
#
# HF-DIR is a float checkpoint (config.json + model.safetensors, f32, as
# `quant-import --export-hf` writes it). Every case copies it to WORK-DIR,
# corrupts one field of the safetensors header (dtype, shape, data_offsets,
# the header length, the JSON itself), cuts the file at a field boundary or
# edits config.json, and checks with expect-error.sh that quant-import
# refuses it with one error naming the file and, where there is one, the
# tensor or key. Exits non-zero at the first case that is accepted, crashes
# or gives an unclear error. "fields" runs the header-field and config.json
# edits, "cuts" the truncations (two lit tests, so that each stays short).
#
#===------------------------------------------------------------------------===#
set -euo pipefail
mode="$1" tool="$2" src="$3" work="$4"
here="$(cd "$(dirname "$0")" && pwd)"
edit="$here/st-edit.sh" expect="$here/expect-error.sh"
st="$src/model.safetensors"
emb='"model.embed_tokens.weight"'
emb_info='"dtype":"F32","shape":\[512,64\],"data_offsets":\[0,131072\]'
ln0='"model.layers.0.input_layernorm.weight"'

# header CASE NEEDLE SED-SCRIPT [LENGTH]: one header edit.
header() {
  local label="$1" needle="$2"
  shift 2
  rm -rf "$work" && mkdir -p "$work" && cp "$src/config.json" "$work/"
  "$edit" "$st" "$work/model.safetensors" "$@"
  "$expect" "$label" "$needle" -- "$tool" "$work" -o /dev/null
}
# cut CASE BYTES: the file's first BYTES bytes.
cut() {
  rm -rf "$work" && mkdir -p "$work" && cp "$src/config.json" "$work/"
  head -c "$2" "$st" > "$work/model.safetensors"
  "$expect" "$1" "model.safetensors" -- "$tool" "$work" -o /dev/null
}
# config CASE NEEDLE SED-SCRIPT: one config.json edit (weights untouched).
config() {
  rm -rf "$work" && mkdir -p "$work" && cp "$st" "$work/"
  sed -e "$3" "$src/config.json" > "$work/config.json"
  "$expect" "$1" "$2" -- "$tool" "$work" -o /dev/null
}

n=$(od -An -tu8 -N8 "$st" | tr -d ' ')
size=$(wc -c < "$st")

if [ "$mode" = fields ]; then
# The dtype field.
header dtype-unknown 'model.safetensors.*embed_tokens.*F99' \
  "s/$emb_info/\"dtype\":\"F99\",\"shape\":[512,64],\"data_offsets\":[0,131072]/"
header dtype-int 'model.safetensors.*embed_tokens.*I32' \
  "s/$emb_info/\"dtype\":\"I32\",\"shape\":[512,64],\"data_offsets\":[0,131072]/"
header dtype-f16-size 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F16\",\"shape\":[512,64],\"data_offsets\":[0,131072]/"
header dtype-number 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":32,\"shape\":[512,64],\"data_offsets\":[0,131072]/"
header dtype-missing 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"shape\":[512,64],\"data_offsets\":[0,131072]/"
header sub-byte-misaligned 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,131072]/"
# The shape field.
header shape-size 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512,65],\"data_offsets\":[0,131072]/"
header shape-negative 'model.safetensors.*embed_tokens.*negative' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[-512,64],\"data_offsets\":[0,131072]/"
header shape-overflow 'model.safetensors.*embed_tokens.*overflow' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,131072]/"
header shape-u64-overflow 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[2,18446744073709551614],\"data_offsets\":[0,131072]/"
header shape-fraction 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512.5,64],\"data_offsets\":[0,131072]/"
header shape-string 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":\"512x64\",\"data_offsets\":[0,131072]/"
header shape-transposed 'embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[64,512],\"data_offsets\":[0,131072]/"
header shape-rank3 'embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512,8,8],\"data_offsets\":[0,131072]/"
# The data_offsets field.
header offsets-past-end 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512,64],\"data_offsets\":[0,131076]/"
header offsets-reversed 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512,64],\"data_offsets\":[131072,0]/"
header offsets-beyond-file 'model.safetensors' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512,64],\"data_offsets\":[99999999999,100000131071]/"
header offsets-u64-wrap 'model.safetensors' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512,64],\"data_offsets\":[18446744073709551615,131071]/"
header offsets-negative 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512,64],\"data_offsets\":[-1,131071]/"
header offsets-one 'model.safetensors.*embed_tokens' \
  "s/$emb_info/\"dtype\":\"F32\",\"shape\":[512,64],\"data_offsets\":[0]/"
header offsets-aliased 'model.safetensors' \
  's/"data_offsets":\[131072,131328\]/"data_offsets":[0,256]/'
header offsets-hole 'model.safetensors' \
  's/"data_offsets":\[131072,131328\]/"data_offsets":[131076,131332]/'
# The JSON header as a whole.
header dup-key 'model.safetensors.*duplicate' "s/$ln0/$emb/"
header not-json 'model.safetensors.*JSON' 's/^{"__metadata__"/{__metadata__/'
header not-object 'model.safetensors' 's/^{/[/'
header metadata-not-string 'model.safetensors.*__metadata__' \
  's/"format":"pt"/"format":7/'
header non-utf8-key 'model.safetensors' \
  "s/model.embed_tokens.weight/model.embed_\xff\xfeokens.weight/"
header tensor-renamed 'embed_tokens' \
  's/model.embed_tokens.weight/model.embed_tokenz.weight/'
# The header length (8 bytes little-endian) lies.
header length-huge 'model.safetensors.*too large' 's/x/x/' 99999999999
header length-past-file 'model.safetensors' 's/x/x/' $((size))
header length-short 'model.safetensors.*JSON' 's/x/x/' $((n / 2))
header length-zero 'model.safetensors' 's/x/x/' 0
header length-u64-wrap 'model.safetensors' 's/x/x/' 18446744073709551615
# Polyglot: bytes after the last tensor.
rm -rf "$work" && mkdir -p "$work" && cp "$src/config.json" "$work/"
{ cat "$st"; printf 'extra_bogus_data_for_polyglot_file'; } > "$work/model.safetensors"
"$expect" trailing-bytes 'model.safetensors' -- "$tool" "$work" -o /dev/null

fi

if [ "$mode" = cuts ]; then
# Cut at every field boundary of the length prefix, then at every JSON
# token boundary of the first tensor's entry, the end of the header and
# through the data section (first, middle and last byte of a tensor).
for c in 0 1 4 7 8 9; do cut "cut-$c" "$c"; done
# The header cut inside the first tensor's entry, with the length prefix
# saying the cut size: the JSON parser, not the length check, must refuse it.
hdr=$(dd if="$st" bs=1 skip=8 count=130 status=none)
for ((i = 1; i < ${#hdr}; i++)); do
  case "${hdr:$i:1}" in
  '{' | ':' | '[' | ']')
    rm -rf "$work" && mkdir -p "$work" && cp "$src/config.json" "$work/"
    "$edit" "$st" "$work/model.safetensors" "s/^\(.\{$i\}\).*/\1/"
    "$expect" "cut-json-$i" 'model.safetensors.*JSON' -- "$tool" "$work" -o /dev/null
    ;;
  esac
done
for c in $((n + 7)) $((n + 8)) $((n + 9)) $((n + 8 + 131071)) \
  $((n + 8 + 131072)) $((size / 2)) $((size - 4)) $((size - 1)); do
  cut "cut-$c" "$c"
done

fi

if [ "$mode" = fields ]; then
# config.json disagrees with the weights.
config cfg-hidden 'hidden_size|embed_tokens|64' 's/"hidden_size": 64/"hidden_size": 96/'
config cfg-layers 'model.layers.5' 's/"num_hidden_layers": 5/"num_hidden_layers": 6/'
config cfg-vocab 'vocab_size|embed_tokens|512' 's/"vocab_size": 512/"vocab_size": 500/'
config cfg-heads 'config.json.*nHeads' 's/"num_attention_heads": 8/"num_attention_heads": 7/'
config cfg-untied 'lm_head' 's/"tie_word_embeddings": true/"tie_word_embeddings": false/'
config cfg-model-type 'model_type|mamba' 's/"model_type": "llama"/"model_type": "mamba"/'
config cfg-not-json 'config.json' 's/^{/{{/'
config cfg-hidden-string 'config.json.*hidden_size' 's/"hidden_size": 64/"hidden_size": "64"/'
config cfg-intermediate 'intermediate_size|mlp|172' 's/"intermediate_size": 172/"intermediate_size": 170/'
fi
echo "safetensors sweep ($mode): all cases refused cleanly"
