//! Leading keywords (`LAPOR`, `ADUAN`, …) that citizens type before the
//! complaint because short-code campaigns taught them to.
//!
//! The keyword is routing noise for the reader of the complaint, so it is
//! taken out of `text` and kept in `subject`, where the core system can still
//! use it to pick a category.
//!
//! [`ConsentWords`] are another matter: a whole message of `STOP` (or
//! `BERHENTI`, `UNREG`) asks for no more messages, `START` (or `DAFTAR`)
//! for them again. Such a message is no complaint.

/// The keywords an instance strips when none are configured.
pub const DEFAULT_KEYWORDS: [&str; 2] = ["LAPOR", "ADUAN"];

/// Characters people put between the keyword and the message: `LAPOR jalan…`,
/// `LAPOR#jalan…`, `LAPOR*jalan…`, `LAPOR/jalan…`, and the line breaks and
/// tabs phones insert.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '#' | '*' | '/')
}

/// A configured list of keywords, matched case-insensitively at the start of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keywords {
    /// Upper-cased, longest first so that `ADUANKU` wins over `ADUAN` when both are listed.
    words: Vec<String>,
}

/// A message split into its keyword (if any) and the complaint itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stripped {
    /// The keyword as configured (upper case), for `subject`.
    pub keyword: Option<String>,
    /// The rest of the message.
    pub text: String,
}

impl Keywords {
    /// Validates a configured list: each keyword is one word without separators.
    pub fn new<S: AsRef<str>>(words: &[S]) -> Result<Self, String> {
        let mut out: Vec<String> = Vec::with_capacity(words.len());
        for w in words {
            let w = w.as_ref().trim();
            if w.is_empty() || w.chars().any(is_separator) {
                return Err(format!(
                    "keywords: `{w}` must be one word without spaces, `#`, `*` or `/`"
                ));
            }
            out.push(w.to_uppercase());
        }
        out.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        out.dedup();
        Ok(Keywords { words: out })
    }

    /// The default list, `LAPOR` and `ADUAN`.
    pub fn default_list() -> Vec<String> {
        DEFAULT_KEYWORDS.iter().map(|s| s.to_string()).collect()
    }

    /// Splits `text` into a leading keyword and the rest.
    ///
    /// A keyword counts only as a whole word (`LAPORAN jalan rusak` keeps its
    /// text) and may be preceded by separators (`#LAPOR jalan`). Separators
    /// right after it are dropped too; the rest of the message is left as written.
    pub fn strip(&self, text: &str) -> Stripped {
        let unchanged = || Stripped {
            keyword: None,
            text: text.to_string(),
        };
        let start = text.trim_start_matches(is_separator);
        let head: String = start.chars().take_while(|c| !is_separator(*c)).collect();
        if head.is_empty() {
            return unchanged();
        }
        let upper = head.to_uppercase();
        let Some(word) = self.words.iter().find(|w| **w == upper) else {
            return unchanged();
        };
        let rest = start[head.len()..].trim_start_matches(is_separator);
        Stripped {
            keyword: Some(word.clone()),
            text: rest.to_string(),
        }
    }
}

/// The words a citizen opts out with when none are configured.
pub const DEFAULT_OPT_OUT: [&str; 3] = ["STOP", "BERHENTI", "UNREG"];

/// The words a citizen opts back in with when none are configured.
pub const DEFAULT_OPT_IN: [&str; 2] = ["START", "DAFTAR"];

/// The configured opt-out and opt-in words, each matched against a whole
/// message (trimmed, in any case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentWords {
    /// Upper-cased.
    opt_out: Vec<String>,
    /// Upper-cased.
    opt_in: Vec<String>,
}

impl ConsentWords {
    /// Validates the configured lists: no blank word, no control character,
    /// no word in both.
    pub fn new<S: AsRef<str>>(opt_out: &[S], opt_in: &[S]) -> Result<Self, String> {
        let read = |key: &str, words: &[S]| -> Result<Vec<String>, String> {
            let mut out = Vec::with_capacity(words.len());
            for w in words {
                let w = w.as_ref().trim();
                if w.is_empty() || w.chars().any(char::is_control) {
                    return Err(format!(
                        "{key}: `{w}` must be a word without control characters"
                    ));
                }
                out.push(w.to_uppercase());
            }
            out.dedup();
            Ok(out)
        };
        let opt_out = read("opt_out_keywords", opt_out)?;
        let opt_in = read("opt_in_keywords", opt_in)?;
        if let Some(both) = opt_out.iter().find(|w| opt_in.contains(w)) {
            return Err(format!(
                "`{both}` is in both opt_out_keywords and opt_in_keywords"
            ));
        }
        Ok(ConsentWords { opt_out, opt_in })
    }

    /// The default opt-out list, `STOP`, `BERHENTI` and `UNREG`.
    pub fn default_opt_out() -> Vec<String> {
        DEFAULT_OPT_OUT.iter().map(|s| s.to_string()).collect()
    }

    /// The default opt-in list, `START` and `DAFTAR`.
    pub fn default_opt_in() -> Vec<String> {
        DEFAULT_OPT_IN.iter().map(|s| s.to_string()).collect()
    }

    /// Whether `text` as a whole is an opt-out (`Some((true, word))`) or an
    /// opt-in (`Some((false, word))`), the word upper-cased.
    pub fn read(&self, text: &str) -> Option<(bool, String)> {
        let upper = text.trim().to_uppercase();
        if upper.is_empty() {
            return None;
        }
        if self.opt_out.contains(&upper) {
            Some((true, upper))
        } else if self.opt_in.contains(&upper) {
            Some((false, upper))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_table() {
        let k = Keywords::new(&Keywords::default_list()).unwrap();
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "LAPOR Jalan berlubang di depan SDN 3 Cibinong",
                Some("LAPOR"),
                "Jalan berlubang di depan SDN 3 Cibinong",
            ),
            ("lapor jalan rusak", Some("LAPOR"), "jalan rusak"),
            ("Lapor#jalan rusak", Some("LAPOR"), "jalan rusak"),
            ("LAPOR*jalan rusak", Some("LAPOR"), "jalan rusak"),
            ("LAPOR/jalan rusak", Some("LAPOR"), "jalan rusak"),
            ("LAPOR # jalan rusak", Some("LAPOR"), "jalan rusak"),
            (
                "  #ADUAN  sampah menumpuk",
                Some("ADUAN"),
                "sampah menumpuk",
            ),
            ("aduan\nlampu jalan mati", Some("ADUAN"), "lampu jalan mati"),
            ("LAPOR", Some("LAPOR"), ""),
            ("LAPORAN jalan rusak", None, "LAPORAN jalan rusak"),
            (
                "Saya mau LAPOR jalan rusak",
                None,
                "Saya mau LAPOR jalan rusak",
            ),
            ("", None, ""),
            ("###", None, "###"),
            ("LAPOR 🙏 tolong", Some("LAPOR"), "🙏 tolong"),
        ];
        for (input, keyword, text) in cases {
            let s = k.strip(input);
            assert_eq!(s.keyword.as_deref(), *keyword, "{input:?}");
            assert_eq!(s.text, *text, "{input:?}");
        }
    }

    #[test]
    fn configured_lists_replace_the_default() {
        let k = Keywords::new(&["pengaduan", "ADU"]).unwrap();
        assert_eq!(
            k.strip("PENGADUAN pungli").keyword.as_deref(),
            Some("PENGADUAN")
        );
        assert_eq!(k.strip("adu#pungli").text, "pungli");
        assert_eq!(k.strip("LAPOR pungli").keyword, None);
        let none = Keywords::new::<&str>(&[]).unwrap();
        assert_eq!(none.strip("LAPOR pungli").text, "LAPOR pungli");
    }

    #[test]
    fn keywords_with_separators_are_refused() {
        assert!(Keywords::new(&["LAPOR SAJA"]).is_err());
        assert!(Keywords::new(&[""]).is_err());
        assert!(Keywords::new(&["A#B"]).is_err());
    }

    #[test]
    fn consent_words_are_whole_messages() {
        let c = ConsentWords::new(
            &ConsentWords::default_opt_out(),
            &ConsentWords::default_opt_in(),
        )
        .unwrap();
        let cases: &[(&str, Option<(bool, &str)>)] = &[
            ("STOP", Some((true, "STOP"))),
            ("  stop\n", Some((true, "STOP"))),
            ("Berhenti", Some((true, "BERHENTI"))),
            ("unreg", Some((true, "UNREG"))),
            ("START", Some((false, "START"))),
            ("daftar ", Some((false, "DAFTAR"))),
            ("STOP pungli di kelurahan", None),
            ("Tolong berhenti buang sampah di sungai", None),
            ("STOP.", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let got = c.read(text);
            assert_eq!(
                got.as_ref().map(|(o, w)| (*o, w.as_str())),
                *expected,
                "{text:?}"
            );
        }
        let none = ConsentWords::new::<&str>(&[], &[]).unwrap();
        assert_eq!(none.read("STOP"), None);
        let own = ConsentWords::new(&["keluar"], &["masuk"]).unwrap();
        assert_eq!(own.read("KELUAR"), Some((true, "KELUAR".to_string())));
        assert_eq!(own.read("STOP"), None);
    }

    #[test]
    fn consent_words_are_checked() {
        assert!(ConsentWords::new(&["STOP"], &["stop"]).is_err());
        assert!(ConsentWords::new(&[" "], &[]).is_err());
        assert!(ConsentWords::new(&["ST\u{7}OP"], &[]).is_err());
    }
}
