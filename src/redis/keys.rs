//! Every key name the gateway writes, in one place: [`Keys`] names them in
//! one partition, with the partition's hash tag when keys are tagged;
//! [`slot`], [`hash_tag`] and [`partition_of`] place keys and
//! conversations on a cluster's slots and partitions.

/// The names of every key the gateway writes, in one partition.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
    stream: String,
    /// `{p}` on a cluster or with partitions, else empty: today's names.
    tag: String,
}

impl Keys {
    /// Keys under `prefix` (`redis.key_prefix`), complaints to `stream`,
    /// untagged (a single node with one partition).
    pub fn new(prefix: &str, stream: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
            stream: stream.to_string(),
            tag: String::new(),
        }
    }

    /// The same names in partition `p` of `count`, with its hash tag.
    pub fn tagged(&self, p: u16, count: u16) -> Self {
        Keys {
            tag: format!("{{{}}}", hash_tag(p, count)),
            ..self.clone()
        }
    }

    /// The partition a tagged key belongs to (`None`: untagged).
    pub fn partition_of(key: &str) -> Option<u16> {
        let open = key.find('{')?;
        let close = open + key[open..].find('}')?;
        let tag = &key[open + 1..close];
        tag.split('-').next()?.parse().ok()
    }

    /// A stream (or other key) named by configuration, in this partition:
    /// `base` untagged, else `base:{p}`.
    pub fn named(&self, base: &str) -> String {
        if self.tag.is_empty() {
            base.to_string()
        } else {
            format!("{base}:{}", self.tag)
        }
    }

    /// `prefix:kind:rest`, with the tag after the kind when tagged.
    fn key(&self, kind: &str, rest: &str) -> String {
        if self.tag.is_empty() {
            format!("{}:{kind}:{rest}", self.prefix)
        } else {
            format!("{}:{kind}:{}:{rest}", self.prefix, self.tag)
        }
    }

    /// The complaints stream.
    pub fn stream(&self) -> String {
        self.named(&self.stream)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A digest of `instance` and an id: ids of any length and content make
    /// keys of one shape, and provider text stays out of key names.
    fn digest(instance: &str, id: &str) -> String {
        aduan_adapter::verify::sha256_hex(format!("{instance}\u{0}{id}").as_bytes())
    }

    /// The dedup key of a delivery (`instance`, `external_id`).
    pub fn dedup(&self, instance: &str, external_id: &str) -> String {
        self.key("dedup", &Keys::digest(instance, external_id))
    }

    /// The hash holding one group of a split message's parts.
    pub fn fragment_group(&self, instance: &str, group: &str) -> String {
        self.key("frag:group", &Keys::digest(instance, group))
    }

    /// Remembers that a part (by its provider id) was received.
    pub fn fragment_part(&self, instance: &str, external_id: &str) -> String {
        self.key("frag:part", &Keys::digest(instance, external_id))
    }

    /// The sorted set of held groups by deadline (ms since the epoch).
    pub fn fragment_due(&self) -> String {
        self.named(&format!("{}:frag:due", self.prefix))
    }

    /// A complaint's reply route (hash: `r` the route JSON, `w` its window key).
    pub fn route(&self, complaint_id: &str) -> String {
        self.key("route", complaint_id)
    }

    /// The time (ms) of a citizen's last message on (`instance`, address).
    pub fn window(&self, instance: &str, to: &str) -> String {
        self.key("window", &Keys::digest(instance, to))
    }

    /// The claim and outcome of one reply (hash).
    pub fn reply(&self, reply_id: &str) -> String {
        self.key("reply", &Keys::digest("", reply_id))
    }

    /// Replies waiting for their next attempt, by due time (ms).
    pub fn retries(&self) -> String {
        self.named(&format!("{}:outbound:retry", self.prefix))
    }

    /// What a provider message id we sent belongs to, for provider reports.
    pub fn sent(&self, instance: &str, provider_message_id: &str) -> String {
        self.key("sent", &Keys::digest(instance, provider_message_id))
    }

    /// The provider ids sent to (`instance`, address), by time sent (ms):
    /// read reports that name only a watermark.
    pub fn sent_to(&self, instance: &str, to: &str) -> String {
        self.key("sentto", &Keys::digest(instance, to))
    }

    /// Set while the citizen at (`instance`, address) opted out of messages.
    pub fn opt_out(&self, instance: &str, to: &str) -> String {
        self.key("optout", &Keys::digest(instance, to))
    }

    /// The outcomes of a complaint's media job, by attachment index.
    pub fn media(&self, complaint_id: &str) -> String {
        self.key("media", complaint_id)
    }

    /// A complaint's status (hash: `latest` the public status JSON, `at` its time in ms).
    pub fn status(&self, complaint_id: &str) -> String {
        self.key("status", complaint_id)
    }

    /// A complaint's status history, newest first (list, bounded).
    pub fn status_history(&self, complaint_id: &str) -> String {
        self.key("statuslog", complaint_id)
    }

    /// Set once a status entry (by `status_id`) was applied.
    pub fn status_seen(&self, status_id: &str) -> String {
        self.key("statusid", &Keys::digest("", status_id))
    }

    /// Held by the complaint that took this tracking number.
    pub fn tracking(&self, number: &str) -> String {
        self.key("tracking", number)
    }

    /// A poller's lease: one key, in whatever slot its name falls in.
    pub fn lease(&self, name: &str) -> String {
        format!("{}:lease:{name}", self.prefix)
    }

    /// A poller's cursor: one key, like its lease.
    pub fn cursor(&self, name: &str) -> String {
        format!("{}:cursor:{name}", self.prefix)
    }

    /// The key the web pages sign their CSRF tokens with, when `[web]
    /// secret` is not set: made once, shared by every replica.
    pub fn web_key(&self) -> String {
        format!("{}:web:key", self.prefix)
    }

    /// A signed-in agent's session, by the SHA-256 of its id (the cookie's
    /// value never appears in a key name).
    pub fn web_session(&self, id_digest: &str) -> String {
        format!("{}:web:session:{id_digest}", self.prefix)
    }
}

/// The hash slot of a key, as Redis Cluster computes it: CRC16 (XMODEM)
/// of its hash tag (or of the whole key when it has none), modulo 16384.
pub fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    let mut crc: u16 = 0;
    for &b in tagged.unwrap_or(bytes) {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// The hash tag of partition `p` of `count`: `p-k` with the first `k` whose
/// slot lies in the `p`-th of `count` equal slices of the slot range, so
/// the partitions spread over the masters of an evenly sliced cluster (as
/// `redis-cli --cluster create` makes it). `0` with one partition.
pub fn hash_tag(p: u16, count: u16) -> String {
    if count <= 1 {
        return "0".into();
    }
    let (from, to) = (
        u32::from(p) * 16384 / u32::from(count),
        (u32::from(p) + 1) * 16384 / u32::from(count),
    );
    (0u32..)
        .map(|k| format!("{p}-{k}"))
        .find(|tag| (from..to).contains(&u32::from(slot(&format!("{{{tag}}}")))))
        .unwrap_or_else(|| p.to_string())
}

/// The partition of a conversation among `count`: a stable hash of its key,
/// so one citizen's conversation stays in order on one partition.
pub fn partition_of(conversation: &str, count: u16) -> u16 {
    if count <= 1 {
        return 0;
    }
    let digest = aduan_adapter::verify::sha256_hex(conversation.as_bytes());
    let head = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
    (head % u64::from(count)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_those_redis_cluster_computes() {
        // As `CLUSTER KEYSLOT` answers.
        assert_eq!(slot("{0}"), 13907);
        assert_eq!(slot("{1}"), 9842);
        assert_eq!(slot("123456789"), 12739);
        // An empty tag is no tag: the whole key is hashed.
        assert_ne!(slot("a{}b"), slot("{}"));
        assert_eq!(slot("aduan:dedup:{2-1}:x"), slot("{2-1}"));
    }

    #[test]
    fn partitions_spread_over_the_slot_range_and_name_themselves() {
        for count in [2u16, 3, 5, 16] {
            for p in 0..count {
                let keys = Keys::new("aduan", "aduan:complaints").tagged(p, count);
                let s = u32::from(slot(&keys.stream()));
                assert!(s >= u32::from(p) * 16384 / u32::from(count));
                assert!(s < (u32::from(p) + 1) * 16384 / u32::from(count));
                assert_eq!(Keys::partition_of(&keys.dedup("i", "e")), Some(p));
                assert_eq!(slot(&keys.dedup("i", "e")), slot(&keys.stream()));
            }
        }
        let plain = Keys::new("aduan", "aduan:complaints");
        assert_eq!(plain.stream(), "aduan:complaints");
        assert_eq!(plain.dedup("i", "e").matches(':').count(), 2);
        assert_eq!(Keys::partition_of(&plain.dedup("i", "e")), None);
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(
            partition_of("wa:6281234567890", 4),
            partition_of("wa:6281234567890", 4)
        );
    }
}
