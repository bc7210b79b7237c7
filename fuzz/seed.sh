#!/usr/bin/env bash
# Builds the fuzz seed corpora from the channel fixtures, in the input layout
# each target reads (see the header of fuzz_targets/adapters.rs):
#   seeds/adapters/  one request per payload fixture, for the instance kind it belongs to
#   seeds/mime/      the email MIME fixtures as they are
#   seeds/config/    the shipped configuration and a few instance tables
# Run from anywhere; rewrites fuzz/seeds/. Only fixtures under 32 KiB are taken.
set -euo pipefail
cd "$(dirname "$0")"
root=..
out=seeds
rm -rf "$out"
mkdir -p "$out/adapters" "$out/mime" "$out/config"

# kind index (position in KINDS in fuzz_targets/adapters.rs); flags byte:
# bit 0 signs the request, bits 1-2 the method (0 POST, 1 GET).
seed() { # kind flags path content-type file name
  local kind=$1 flags=$2 path=$3 ctype=$4 file=$5 name=$6
  [ "$(wc -c <"$file")" -le 32768 ] || return 0
  {
    printf "\\x$(printf %02x "$kind")\\x$(printf %02x "$flags")"
    printf '%s\ncontent-type: %s\n\n' "$path" "$ctype"
    cat "$file"
  } >"$out/adapters/seed-$name"
}

json_dir() { # kind route dir tag
  local kind=$1 route=$2 dir=$3 tag=$4 f
  for f in "$root/$dir"/*.json; do
    case "$f" in *.expected.json) continue ;; esac
    [ -e "$f" ] || continue
    seed "$kind" 1 "/webhooks/$route/fuzz" application/json "$f" "$tag-$(basename "$f" .json)"
  done
}

json_dir 0 whatsapp channels/meta/fixtures/whatsapp whatsapp
json_dir 1 messenger channels/meta/fixtures/messenger messenger
json_dir 2 instagram channels/meta/fixtures/instagram instagram
json_dir 3 telegram channels/telegram/fixtures telegram
json_dir 4 x channels/x/fixtures x
json_dir 5 transcripts channels/transcript/fixtures transcript
json_dir 9 infobip channels/sms/fixtures/infobip infobip

form=application/x-www-form-urlencoded
for f in "$root"/channels/sms/fixtures/twilio/*.form; do
  seed 6 1 /webhooks/twilio/fuzz "$form" "$f" "twilio-$(basename "$f" .form)"
done
for f in "$root"/channels/sms/fixtures/vonage/*.form; do
  seed 7 0 /webhooks/vonage/fuzz "$form" "$f" "vonage-$(basename "$f" .form)"
done
seed 7 0 /webhooks/vonage/fuzz application/json "$root/channels/sms/fixtures/vonage/inbound.json" vonage-inbound-json
# Query-string fixtures become GET requests with an empty body.
for f in "$root"/channels/sms/fixtures/vonage/*.query "$root"/channels/sms/fixtures/generic/*.query; do
  kind=7
  case "$f" in */generic/*) kind=10 ;; */signed_*) kind=8 ;; esac
  name="$(basename "$(dirname "$f")")-$(basename "$f" .query)"
  printf "\\x$(printf %02x "$kind")\\x02/webhooks/x/fuzz?%s\n\n" "$(tr -d '\n' <"$f")" >"$out/adapters/seed-$name"
done
seed 10 0 "/webhooks/sms/fuzz?secret=rahasia-fuzz" "$form" "$root/channels/sms/fixtures/generic/playsms.form" generic-playsms
seed 10 0 "/webhooks/sms/fuzz?secret=rahasia-fuzz" application/json "$root/channels/sms/fixtures/generic/android.json" generic-android

hooks="$root/channels/email/fixtures/webhooks"
if [ -d "$hooks" ]; then
  seed 11 0 /webhooks/email/fuzz "$form" "$hooks/mailgun-mime.form" mailgun-mime
  for f in "$hooks"/sendgrid-*.multipart; do
    boundary="$(grep -m1 -o -- '--[A-Za-z0-9_=.-]*' "$f" | sed 's/^--//' || true)"
    seed 12 1 /webhooks/email/fuzz "multipart/form-data; boundary=$boundary" "$f" "$(basename "$f" .multipart)"
  done
  for f in "$hooks"/postmark-*.json; do
    seed 13 1 /webhooks/email/fuzz application/json "$f" "$(basename "$f" .json)"
  done
fi

for f in "$root"/channels/email/fixtures/mime/*.eml; do
  [ "$(wc -c <"$f")" -le 32768 ] || continue
  cp "$f" "$out/mime/seed-$(basename "$f")"
done

cp "$root/config/aduan.toml" "$out/config/seed-aduan.toml"
cat >"$out/config/seed-limits.toml" <<'TOML'
[server]
listen = "127.0.0.1:8080"

[limits]
per_sender_per_minute = 30
json_max_depth = 16

[limits.body_limit_bytes]
transcripts = 65536

[limits.instances.wa-jabar]
per_instance_rps = 50

[[instances]]
name = "wa-jabar"
kind = "whatsapp"
app_secret = "rahasia"
verify_token = "token"

[[instances]]
name = "cc-bogor"
kind = "transcript"
tokens = ["token"]
TOML

echo "seeds: $(ls "$out/adapters" | wc -l) adapters, $(ls "$out/mime" | wc -l) mime, $(ls "$out/config" | wc -l) config" >&2
