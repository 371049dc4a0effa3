#!/usr/bin/env bash
# Makes the demo's «Плохо» recordings once: each visit of scripts/demo-clips.txt voiced with
# espeak-ng (the visitor's turns higher), a pause of 5–20 s after every turn, encoded as a
# tablet records (AAC-LC, 16 kHz, mono, 24 kbit/s, in 3GP). Clips already made are kept.
# Usage: scripts/demo-clips.sh DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/demo-clips.sh DIR}"
mkdir -p "$out"
made=0
n=0
while IFS= read -r line; do
  case "$line" in '#'* | '') continue ;; esac
  n=$((n + 1))
  clip=$(printf '%s/visit-%02d.3gp' "$out" "$n")
  [ -s "$clip" ] && continue
  ssml="<speak>"
  turn=0
  IFS='|' read -ra turns <<< "$line"
  for text in "${turns[@]}"; do
    turn=$((turn + 1))
    pause=$(( (n * 7 + turn * 5) % 16 + 5 ))
    case "$text" in
      'П: '*) ssml+="<prosody pitch=\"+55%\" rate=\"95%\">${text#П: }</prosody>" ;;
      *) ssml+="$text" ;;
    esac
    ssml+="<break time=\"${pause}s\"/>"
  done
  ssml+="</speak>"
  wav=$(mktemp --suffix=.wav)
  espeak-ng -v ru -s 150 -m -w "$wav" "$ssml"
  ffmpeg -nostdin -hide_banner -loglevel error -y -i "$wav" -ar 16000 -ac 1 -c:a aac -b:a 24k -f 3gp \
    "$clip.part"
  rm -f "$wav"
  mv "$clip.part" "$clip"
  made=$((made + 1))
done < scripts/demo-clips.txt
echo "demo clips: $n in $out ($made made now)"
