//! The visitor's feedback link on the thank-you screen: signed here, offline, with the tablet's
//! own key (see `shared_model::FeedbackToken`), and drawn as a QR code for the visitor's phone.
//! The link names the visit and the tablet, never the rating: the specialist can scan it too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use shared_model::{FeedbackLinks, FeedbackToken};
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// The QR code of one visit's link, ready for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackQr {
    pub visit_id: Uuid,
    /// The address the code holds.
    pub link: String,
    /// An SVG image as a `data:` URL (the kiosk page's CSP allows images from `data:` only).
    pub image: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the feedback link does not fit in a QR code: {0}")]
    TooLong(#[from] qrcode::types::QrError),
}

/// The QR code of `visit_id`'s link, or `None` while the server has not said where links lead
/// (it has no public address, or has not answered a sync since the key was made).
pub fn visit_qr(store: &Store, visit_id: Uuid) -> Result<Option<FeedbackQr>, FeedbackError> {
    let Some(links) = store.feedback_links()? else {
        return Ok(None);
    };
    let key = store.feedback_signing_key()?;
    Ok(Some(qr(visit_id, &link(&key, &links, visit_id))?))
}

/// The link a visitor opens to rate `visit_id` in detail.
pub fn link(key: &SigningKey, links: &FeedbackLinks, visit_id: Uuid) -> String {
    let token = FeedbackToken {
        visit_id,
        tablet_id: links.tablet_id,
    }
    .sign(key);
    format!("{}{token}", links.base_url)
}

/// The QR code of `link`. Level M (15 % of the code may be unreadable: a glare on the screen),
/// with the quiet zone phones need; the link's length is the same for every visit of a
/// tablet, so is the code's size.
pub fn qr(visit_id: Uuid, link: &str) -> Result<FeedbackQr, FeedbackError> {
    let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M)?;
    let image = code
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(8, 8)
        .build();
    Ok(FeedbackQr {
        visit_id,
        link: link.to_string(),
        image: format!("data:image/svg+xml;base64,{}", STANDARD.encode(image)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_verifies_with_the_tablet_key_and_names_the_visit() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let links = FeedbackLinks {
            base_url: "https://ocenka.example/f/".into(),
            tablet_id: 12,
        };
        let visit = Uuid::from_u128(99);
        let link = link(&key, &links, visit);
        let token = link
            .strip_prefix("https://ocenka.example/f/")
            .expect("the base URL first");
        let public = shared_model::FeedbackKey::of(&key)
            .to_bytes()
            .expect("a public key");
        let claims = FeedbackToken::verify(token, &public).expect("a valid signature");
        assert_eq!((claims.visit_id, claims.tablet_id), (visit, 12));

        let code = qr(visit, &link).expect("fits");
        assert!(code.image.starts_with("data:image/svg+xml;base64,"));
        // Another visit of the same tablet: a code of the same size.
        let other = Uuid::from_u128(100);
        let other = qr(other, &self::link(&key, &links, other)).expect("fits");
        assert_eq!(svg_header(&other), svg_header(&code));
        assert!(svg_header(&code).contains("<svg"), "{}", svg_header(&code));
    }

    /// The SVG's first element, with its width and height.
    fn svg_header(qr: &FeedbackQr) -> String {
        let svg = STANDARD
            .decode(&qr.image["data:image/svg+xml;base64,".len()..])
            .expect("base64");
        let svg = String::from_utf8(svg).expect("UTF-8");
        let start = svg.find("<svg").expect("an svg element");
        let end = start + svg[start..].find('>').expect("its end");
        svg[start..=end].to_string()
    }
}
