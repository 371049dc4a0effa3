#!/usr/bin/env bash
# Makes the recording fixtures the server's tests upload: a real AAC-LC 3GP file (what the
# tablets send) and the kinds the server must refuse. Needs ffmpeg and espeak-ng.
# The outputs are committed, so tests do not need ffmpeg; run this to remake them.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

espeak-ng -v ru -s 150 -w "$tmp/speech.wav" \
  "Здравствуйте. Присаживайтесь, пожалуйста. Какой у вас вопрос? Давайте посмотрим ваши документы."
common=(-hide_banner -loglevel error -y -i "$tmp/speech.wav" -ar 16000 -ac 1)

# What a tablet uploads: AAC-LC, 16 kHz, mono, 24 kbit/s, in 3GP (brand 3gp4/3gp5).
ffmpeg "${common[@]}" -c:a aac -b:a 24k -f 3gp "$out/visit.3gpp"
# The same audio as MP4 and M4A (refused: not 3GP), and as WAV (refused: not ISO media).
ffmpeg "${common[@]}" -c:a aac -b:a 24k -f mp4 "$out/visit.mp4"
ffmpeg "${common[@]}" -c:a aac -b:a 24k -f ipod "$out/visit.m4a"
ffmpeg "${common[@]}" -t 1 -f wav "$out/visit.wav"

# AMR-NB in 3GP (refused: no browser plays it). Debian's ffmpeg has no AMR encoder, so the
# stream is one second of silent 12.2 kbit/s frames written by hand, then muxed by ffmpeg.
{
  printf '#!AMR\n'
  for _ in $(seq 50); do
    printf '\x3c'
    head -c 31 /dev/zero
  done
} > "$tmp/silence.amr"
ffmpeg -hide_banner -loglevel error -y -i "$tmp/silence.amr" -c:a copy -f 3gp "$out/visit-amr.3gpp"

ls -l "$out"
