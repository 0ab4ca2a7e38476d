//! Every text the widget shows, in English, Spanish and Brazilian Portuguese, and the host's
//! overrides.
//!
//! - [`Locale::resolve`] picks the language: the host's `locale` option, else the page's
//!   `<html lang>`, else the browser's languages (`navigator.languages`), else English. Each is
//!   matched by its primary subtag too, so `es-CL` is Spanish and `pt-PT` is the Portuguese we
//!   have.
//! - [`Messages`] holds one text per [`Text`]; the host's `messages` option replaces any of them by
//!   key (the keys are [`Text::key`], e.g. `connect`). A text may hold `{placeholders}`, listed
//!   in its doc comment, which the widget fills in.
//!
//! The three translations of each text sit side by side in one table, so none can go missing.
//! They are plain `&'static str`s in the bundle: about 2 KB gzipped for the three languages,
//! measured with `cargo bench -p keebai-e2e --bench widget`.

/// A language built into the widget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    En = 0,
    Es = 1,
    PtBr = 2,
}

impl Locale {
    /// The BCP 47 tag the widget marks its texts with (`lang`).
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
            Self::PtBr => "pt-BR",
        }
    }

    /// The built-in language for a BCP 47 tag, by its primary subtag (`es-419` → `es`,
    /// `pt-PT` → `pt-BR`); `None` for one not built in.
    pub fn from_tag(tag: &str) -> Option<Self> {
        // Two letters, then the end or a subtag (`-`, or `_` as some systems write it).
        let tag = tag.trim_ascii().as_bytes();
        if tag.len() > 2 && !matches!(tag[2], b'-' | b'_') {
            return None;
        }
        match tag.get(..2).map(|primary| primary.to_ascii_lowercase()).as_deref() {
            Some(b"en") => Some(Self::En),
            Some(b"es") => Some(Self::Es),
            Some(b"pt") => Some(Self::PtBr),
            _ => None,
        }
    }

    /// The first of the host's choice, the page's language and the browser's languages that is
    /// built in; English when none is.
    pub fn resolve<'a>(
        option: Option<&str>,
        page_lang: Option<&str>,
        browser: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let first = option.and_then(Self::from_tag).or_else(|| page_lang.and_then(Self::from_tag));
        first.or_else(|| browser.into_iter().find_map(Self::from_tag)).unwrap_or(Self::En)
    }
}

macro_rules! texts {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $key:literal {
            en: $en:literal,
            es: $es:literal,
            pt_br: $pt_br:literal $(,)?
        }
    )*) => {
        /// A text the widget shows, named by its key for overrides.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Text {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Text {
            /// Every text, in order.
            pub const ALL: &[Text] = &[$(Text::$variant),*];

            /// The key a host's `messages` option names it by.
            pub fn key(self) -> &'static str {
                [$($key),*][self as usize]
            }

            /// One table per language, indexed by the text: a lookup rather than a match
            /// with an arm per text and language.
            fn builtin(self, locale: Locale) -> &'static str {
                const TABLES: [&[&str]; 3] = [&[$($en),*], &[$($es),*], &[$($pt_br),*]];
                TABLES[locale as usize][self as usize]
            }
        }
    };
}

texts! {
    /// Before anything started.
    Intro "intro" {
        en: "Link a WhatsApp number by scanning a QR code with your phone.",
        es: "Vincula un número de WhatsApp escaneando un código QR con tu teléfono.",
        pt_br: "Conecte um número do WhatsApp escaneando um código QR com o seu celular.",
    }
    /// The button that starts.
    Connect "connect" {
        en: "Connect WhatsApp",
        es: "Conectar WhatsApp",
        pt_br: "Conectar WhatsApp",
    }
    /// The button after an expiry or a failure.
    TryAgain "try_again" {
        en: "Try again",
        es: "Reintentar",
        pt_br: "Tentar novamente",
    }
    /// While the session is created.
    Preparing "preparing" {
        en: "Preparing a code…",
        es: "Preparando un código…",
        pt_br: "Preparando um código…",
    }
    /// Before the first QR arrives.
    WaitingForCode "waiting_for_code" {
        en: "Waiting for a code from WhatsApp…",
        es: "Esperando un código de WhatsApp…",
        pt_br: "Aguardando um código do WhatsApp…",
    }
    /// Beside a QR.
    ScanSteps "scan_steps" {
        en: "Scan this code with WhatsApp on your phone: Settings › Linked devices › Link a device.",
        es: "Escanea este código con WhatsApp en tu teléfono: Ajustes › Dispositivos vinculados › Vincular un dispositivo.",
        pt_br: "Escaneie este código com o WhatsApp no seu celular: Configurações › Aparelhos conectados › Conectar um aparelho.",
    }
    /// The QR's accessible name.
    QrLabel "qr_label" {
        en: "QR code to link WhatsApp: scan it with the WhatsApp app on your phone",
        es: "Código QR para vincular WhatsApp: escanéalo con la app de WhatsApp de tu teléfono",
        pt_br: "Código QR para conectar o WhatsApp: escaneie com o app do WhatsApp no seu celular",
    }
    /// `{seconds}` until the next QR.
    QrRefreshes "qr_refreshes" {
        en: "Code refreshes in {seconds} s",
        es: "El código se renueva en {seconds} s",
        pt_br: "O código muda em {seconds} s",
    }
    /// `{time}` (m:ss) until the pairing window closes.
    SessionEnds "session_ends" {
        en: "session ends in {time}",
        es: "la sesión termina en {time}",
        pt_br: "a sessão termina em {time}",
    }
    /// The phone scanned the QR.
    Scanned "scanned" {
        en: "Scanned. Linking your phone…",
        es: "Escaneado. Vinculando tu teléfono…",
        pt_br: "Escaneado. Conectando seu celular…",
    }
    /// The person typed the pairing code on the phone.
    CodeEntered "code_entered" {
        en: "Code entered. Linking your phone…",
        es: "Código ingresado. Vinculando tu teléfono…",
        pt_br: "Código digitado. Conectando seu celular…",
    }
    /// Linked: `{number}` is the phone number and its profile name in brackets.
    Connected "connected" {
        en: "Connected: {number}.",
        es: "Conectado: {number}.",
        pt_br: "Conectado: {number}.",
    }
    /// The pairing window closed.
    Expired "expired" {
        en: "The code expired before it was used.",
        es: "El código expiró sin usarse.",
        pt_br: "O código expirou sem ser usado.",
    }
    /// Opens the phone number form.
    UsePhone "use_phone" {
        en: "Can't scan? Link with phone number",
        es: "¿No puedes escanear? Vincular con número de teléfono",
        pt_br: "Não consegue escanear? Conectar com número de telefone",
    }
    /// The phone number field's label.
    PhoneLabel "phone_label" {
        en: "Phone number, with country code",
        es: "Número de teléfono, con código de país",
        pt_br: "Número de telefone, com código do país",
    }
    /// Under the phone number field.
    PhoneHint "phone_hint" {
        en: "The number of the phone with WhatsApp, starting with + and the country code, e.g. +56 9 1234 5678.",
        es: "El número del teléfono con WhatsApp, empezando por + y el código de país, p. ej. +56 9 1234 5678.",
        pt_br: "O número do celular com o WhatsApp, começando com + e o código do país, ex.: +55 11 91234 5678.",
    }
    /// Submits the phone number.
    GetCode "get_code" {
        en: "Get code",
        es: "Obtener código",
        pt_br: "Gerar código",
    }
    /// Closes the form back to the QR.
    UseQr "use_qr" {
        en: "Scan a QR code instead",
        es: "Escanear un código QR",
        pt_br: "Escanear um código QR",
    }
    /// Closes the form back to the pairing code.
    BackToCode "back_to_code" {
        en: "Back to the code",
        es: "Volver al código",
        pt_br: "Voltar ao código",
    }
    /// The number is not E.164.
    InvalidPhone "invalid_phone" {
        en: "Enter + and the country code, then the number: 8 to 15 digits in all.",
        es: "Escribe + y el código de país, luego el número: de 8 a 15 dígitos en total.",
        pt_br: "Digite + e o código do país, depois o número: de 8 a 15 dígitos no total.",
    }
    /// While a pairing code is requested.
    RequestingCode "requesting_code" {
        en: "Asking WhatsApp for a code…",
        es: "Pidiendo un código a WhatsApp…",
        pt_br: "Pedindo um código ao WhatsApp…",
    }
    /// A code request failed.
    CodeRequestFailed "code_request_failed" {
        en: "No code could be requested. Try again.",
        es: "No se pudo pedir un código. Inténtalo de nuevo.",
        pt_br: "Não foi possível pedir um código. Tente novamente.",
    }
    /// The session took as many numbers as it allows.
    TooManyNumbers "too_many_numbers" {
        en: "This session takes no more numbers. Use the last code, or start again.",
        es: "Esta sesión no acepta más números. Usa el último código o empieza de nuevo.",
        pt_br: "Esta sessão não aceita mais números. Use o último código ou comece de novo.",
    }
    /// Beside a pairing code: `{phone}` is the number it is for.
    EnterCode "enter_code" {
        en: "Enter this code in WhatsApp on {phone}.",
        es: "Ingresa este código en WhatsApp en el {phone}.",
        pt_br: "Digite este código no WhatsApp do {phone}.",
    }
    /// The pairing code's accessible name.
    CodeLabel "code_label" {
        en: "Pairing code",
        es: "Código de vinculación",
        pt_br: "Código de conexão",
    }
    /// Copies the pairing code.
    Copy "copy" {
        en: "Copy code",
        es: "Copiar código",
        pt_br: "Copiar código",
    }
    /// After copying.
    Copied "copied" {
        en: "Copied",
        es: "Copiado",
        pt_br: "Copiado",
    }
    /// Step 1 on the phone.
    StepOpen "step_open" {
        en: "Open WhatsApp on your phone.",
        es: "Abre WhatsApp en tu teléfono.",
        pt_br: "Abra o WhatsApp no seu celular.",
    }
    /// Step 2 on the phone.
    StepLinkDevice "step_link_device" {
        en: "Go to Settings › Linked devices › Link a device.",
        es: "Ve a Ajustes › Dispositivos vinculados › Vincular un dispositivo.",
        pt_br: "Vá em Configurações › Aparelhos conectados › Conectar um aparelho.",
    }
    /// Step 3 on the phone.
    StepWithPhone "step_with_phone" {
        en: "Tap “Link with phone number instead”.",
        es: "Toca «Vincular con el número de teléfono».",
        pt_br: "Toque em “Conectar com número de telefone”.",
    }
    /// Step 4 on the phone.
    StepType "step_type" {
        en: "Type the code shown here.",
        es: "Escribe el código que ves aquí.",
        pt_br: "Digite o código mostrado aqui.",
    }
    /// `{time}` (m:ss) until the pairing code is replaced.
    CodeValid "code_valid" {
        en: "Code valid for {time}",
        es: "Código válido por {time}",
        pt_br: "Código válido por {time}",
    }
    /// Opens the form again for another number.
    WrongNumber "wrong_number" {
        en: "Wrong number?",
        es: "¿Número equivocado?",
        pt_br: "Número errado?",
    }
    /// The session could not be started.
    StartFailed "start_failed" {
        en: "The pairing service could not be reached. Check your connection and try again.",
        es: "No se pudo contactar el servicio de vinculación. Revisa tu conexión e inténtalo de nuevo.",
        pt_br: "Não foi possível falar com o serviço de conexão. Verifique sua conexão e tente novamente.",
    }
    /// The server no longer knows the session.
    SessionLost "session_lost" {
        en: "The pairing session was lost (the server restarted). Try again.",
        es: "Se perdió la sesión de vinculación (el servidor se reinició). Inténtalo de nuevo.",
        pt_br: "A sessão de conexão foi perdida (o servidor reiniciou). Tente novamente.",
    }
    /// `failed` `device_limit`.
    DeviceLimit "device_limit" {
        en: "This phone already has as many linked devices as WhatsApp allows. Remove one and try again.",
        es: "Este teléfono ya tiene el máximo de dispositivos vinculados. Quita uno e inténtalo de nuevo.",
        pt_br: "Este celular já tem o máximo de aparelhos conectados. Remova um e tente novamente.",
    }
    /// `failed` `whatsapp_unreachable`.
    WhatsappUnreachable "whatsapp_unreachable" {
        en: "WhatsApp could not be reached. Try again in a moment.",
        es: "No se pudo contactar a WhatsApp. Inténtalo de nuevo en un momento.",
        pt_br: "Não foi possível falar com o WhatsApp. Tente novamente em instantes.",
    }
    /// `failed` `code_rejected`.
    CodeRejected "code_rejected" {
        en: "The code was typed wrong too many times.",
        es: "El código se escribió mal demasiadas veces.",
        pt_br: "O código foi digitado errado vezes demais.",
    }
    /// `failed` `passkey_required`.
    PasskeyRequired "passkey_required" {
        en: "WhatsApp asks this account to confirm with a passkey, which only WhatsApp's own apps can do.",
        es: "WhatsApp pide confirmar esta cuenta con una llave de acceso, algo que solo sus propias apps pueden hacer.",
        pt_br: "O WhatsApp pede para confirmar esta conta com uma chave de acesso, o que só os apps do próprio WhatsApp fazem.",
    }
    /// Any other `failed` code.
    Failed "failed" {
        en: "Linking failed. Try again.",
        es: "No se pudo vincular. Inténtalo de nuevo.",
        pt_br: "Não foi possível conectar. Tente novamente.",
    }
    /// `disconnected`: the device was removed right after linking.
    Disconnected "disconnected" {
        en: "The phone removed this linked device.",
        es: "El teléfono quitó este dispositivo vinculado.",
        pt_br: "O celular removeu este aparelho conectado.",
    }
}

/// The texts the widget shows: a built-in language with the host's overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Messages {
    /// The `lang` the texts are marked with: the host's `locale` when it gave one, else the
    /// built-in language's tag.
    lang: String,
    locale: Locale,
    overrides: Vec<(Text, String)>,
}

impl Default for Messages {
    fn default() -> Self {
        Self::new(Locale::En)
    }
}

impl Messages {
    /// A built-in language without overrides.
    pub fn new(locale: Locale) -> Self {
        Self { lang: locale.tag().to_owned(), locale, overrides: Vec::new() }
    }

    /// What the widget shows for the host's `locale` option (if any) in a page and a browser
    /// with these languages. A `locale` that is not built in (`fr`) still marks the texts'
    /// `lang`, for a host that overrides every text.
    pub fn resolve<'a>(
        option: Option<&str>,
        page_lang: Option<&str>,
        browser: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let locale = Locale::resolve(option, page_lang, browser);
        let mut messages = Self::new(locale);
        if let Some(option) = option.map(str::trim).filter(|o| !o.is_empty()) {
            option.clone_into(&mut messages.lang);
        }
        messages
    }

    pub fn locale(&self) -> Locale {
        self.locale
    }

    /// The `lang` attribute for the widget.
    pub fn lang(&self) -> &str {
        &self.lang
    }

    /// Replaces the text named `key`; `false` (and nothing changes) for a key that names no
    /// text.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> bool {
        let Some(text) = Text::ALL.iter().copied().find(|t| t.key() == key) else {
            return false;
        };
        let value = value.into();
        match self.overrides.iter_mut().find(|(t, _)| *t == text) {
            Some((_, old)) => *old = value,
            None => self.overrides.push((text, value)),
        }
        true
    }

    /// The text, overridden or built in.
    pub fn get(&self, text: Text) -> &str {
        self.overrides
            .iter()
            .find(|(t, _)| *t == text)
            .map_or_else(|| text.builtin(self.locale), |(_, value)| value.as_str())
    }

    /// The text with its `{placeholders}` filled in; an unknown one stays as written.
    pub fn fill(&self, text: Text, values: &[(&str, &str)]) -> String {
        // Split at `{` and `}` (character searches): a substring search would link Rust's
        // string searcher and its panic formatting into the bundle, 3 KB for this one loop.
        let mut filled = String::new();
        let mut rest = self.get(text);
        while let Some((before, after)) = rest.split_once('{') {
            filled.push_str(before);
            let known = after.split_once('}').and_then(|(name, tail)| {
                values.iter().find(|(n, _)| *n == name).map(|(_, value)| (*value, tail))
            });
            match known {
                Some((value, tail)) => {
                    filled.push_str(value);
                    rest = tail;
                }
                None => {
                    filled.push('{');
                    rest = after;
                }
            }
        }
        filled.push_str(rest);
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_choice_then_the_page_then_the_browser_then_english() {
        let resolve = |option, page, browser: &[&'static str]| {
            Locale::resolve(option, page, browser.iter().copied())
        };
        assert_eq!(resolve(Some("es"), Some("pt-BR"), &["en-US"]), Locale::Es);
        assert_eq!(resolve(None, Some("pt-BR"), &["es"]), Locale::PtBr);
        assert_eq!(resolve(None, None, &["fr-FR", "es-CL", "en"]), Locale::Es, "first known");
        assert_eq!(resolve(None, Some("fr"), &["pt-PT"]), Locale::PtBr, "an unknown page lang");
        assert_eq!(resolve(Some("de"), None, &[]), Locale::En);
        assert_eq!(resolve(None, Some(""), &[]), Locale::En);
        assert_eq!(resolve(Some("ES_mx"), None, &[]), Locale::Es, "case and _ are tolerated");
        assert_eq!(resolve(Some("est"), Some("e"), &["pt-BR"]), Locale::PtBr, "est is not es");
    }

    #[test]
    fn every_text_is_translated_with_the_same_placeholders() {
        let placeholders = |s: &str| {
            s.split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}'))
                .map(|(n, _)| n.to_owned())
                .collect::<Vec<_>>()
        };
        let mut keys = std::collections::HashSet::new();
        for &text in Text::ALL {
            assert!(keys.insert(text.key()), "{} twice", text.key());
            let en = text.builtin(Locale::En);
            for locale in [Locale::Es, Locale::PtBr] {
                let other = text.builtin(locale);
                assert!(!other.is_empty(), "{} in {locale:?}", text.key());
                assert_eq!(placeholders(en), placeholders(other), "{} in {locale:?}", text.key());
            }
        }
        assert_eq!(Messages::new(Locale::Es).get(Text::Connect), "Conectar WhatsApp");
        assert_eq!(Messages::new(Locale::PtBr).get(Text::TryAgain), "Tentar novamente");
    }

    #[test]
    fn overrides_replace_one_text_by_key_and_unknown_keys_change_nothing() {
        let mut messages = Messages::resolve(Some("es"), None, []);
        assert!(messages.set("connect", "Vincular mi WhatsApp"));
        assert!(messages.set("connect", "Vincular WhatsApp"), "the last one wins");
        assert!(!messages.set("conect", "typo"));
        assert_eq!(messages.get(Text::Connect), "Vincular WhatsApp");
        assert_eq!(messages.get(Text::TryAgain), "Reintentar", "the rest stays Spanish");
        assert_eq!(messages.lang(), "es");

        let mut french = Messages::resolve(Some("fr"), Some("en"), []);
        french.set("code_valid", "Code valable {time}");
        assert_eq!(french.lang(), "fr", "the host's own language marks the texts");
        assert_eq!(french.fill(Text::CodeValid, &[("time", "2:59")]), "Code valable 2:59");
        assert_eq!(french.get(Text::Copy), "Copy code", "what it did not override is English");
    }

    #[test]
    fn placeholders_are_filled_and_others_left_alone() {
        let mut messages = Messages::new(Locale::En);
        assert_eq!(
            messages.fill(Text::EnterCode, &[("phone", "+56912345678"), ("unused", "x")]),
            "Enter this code in WhatsApp on +56912345678."
        );
        messages.set("enter_code", "{phone} {other} {phone}{ and {");
        assert_eq!(
            messages.fill(Text::EnterCode, &[("phone", "+569")]),
            "+569 {other} +569{ and {"
        );
    }
}
