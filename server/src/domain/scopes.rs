use keebai_protocol::Scope;

/// The set of scopes a token holds, stored as their wire names separated by spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    fn bit(scope: Scope) -> u8 {
        match scope {
            Scope::ChannelsConnect => 1,
            Scope::ChannelsRead => 2,
            Scope::MessagesSend => 4,
            Scope::WebhooksManage => 8,
        }
    }

    pub fn all() -> Self {
        Self::from_iter(Scope::ALL)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The stored form, e.g. `"channels:connect channels:read"`.
    pub fn to_stored(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    /// Reads the stored form; names this build does not know are dropped (they grant nothing).
    pub fn from_stored(stored: &str) -> Self {
        stored.split_whitespace().filter_map(|s| s.parse().ok()).collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |acc, s| acc | Self::bit(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let scopes: Scopes = [Scope::MessagesSend, Scope::ChannelsConnect].into_iter().collect();
        assert_eq!(scopes.to_stored(), "channels:connect messages:send");
        assert_eq!(Scopes::from_stored(&scopes.to_stored()), scopes);
        assert!(scopes.contains(Scope::ChannelsConnect));
        assert!(!scopes.contains(Scope::ChannelsRead));
    }

    #[test]
    fn unknown_stored_names_grant_nothing() {
        assert!(Scopes::from_stored("admin channels:*").is_empty());
    }
}
