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

# Speech and silence at known times, for the player's analysis: three phrases (each trimmed of
# its own leading and trailing silence) between stretches of digital silence. The times of
# speech go beside it as JSON, in seconds. Over two minutes long, so «последние 2 минуты» is
# a real jump.
phrases=("Здравствуйте, присаживайтесь пожалуйста" "Давайте посмотрим ваши документы"
  "Спасибо, всего доброго, до свидания")
gaps=(2 50 70 5)
inputs=() filters="" at=0 truth=""
for i in 0 1 2 3; do
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i anullsrc=r=16000:cl=mono -t "${gaps[$i]}" \
    -c:a pcm_s16le "$tmp/gap$i.wav"
  inputs+=(-i "$tmp/gap$i.wav")
  at=$(echo "$at + ${gaps[$i]}" | bc -l)
  [ "$i" = 3 ] && break
  espeak-ng -v ru -s 150 -w "$tmp/raw$i.wav" "${phrases[$i]}"
  trim="silenceremove=start_periods=1:start_threshold=-45dB,areverse"
  ffmpeg -hide_banner -loglevel error -y -i "$tmp/raw$i.wav" -ar 16000 -ac 1 \
    -af "$trim,$trim" "$tmp/phrase$i.wav"
  inputs+=(-i "$tmp/phrase$i.wav")
  length=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$tmp/phrase$i.wav")
  end=$(echo "$at + $length" | bc -l)
  truth="$truth${truth:+, }[$(printf '%.3f' "$at"), $(printf '%.3f' "$end")]"
  at=$end
done
for i in $(seq 0 6); do filters="$filters[$i]"; done
ffmpeg -hide_banner -loglevel error -y "${inputs[@]}" \
  -filter_complex "${filters}concat=n=7:v=0:a=1" -ar 16000 -ac 1 -c:a aac -b:a 24k -f 3gp \
  "$out/visit-segments.3gpp"
echo "{\"speech\": [$truth]}" > "$out/visit-segments.json"

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
