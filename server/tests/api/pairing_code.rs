//! Linking by phone number (`POST …/pairing-code`) with the simulated phone: the code replaces
//! the QR on the stream, the phone types it (`/sim/enter-code`), and the session links.

use keebai_protocol::sim::ScanOutcome;
use keebai_protocol::{ErrorCode, FailureCode, Scope, StreamEvent};
use keebai_test_support::{PHONE, assert_error, spawn_app, spawn_app_with};
use reqwest::StatusCode;

const OTHER_PHONE: &str = "+5511987650001";

#[tokio::test]
async fn a_code_replaces_the_qr_and_typing_it_on_the_phone_links_the_channel() {
    let app = spawn_app().await;
    let (session, mut stream, old_qr) = app.session_showing_qr().await;

    let code = app.pairing_code_ok(&session, PHONE).await;
    assert_eq!(code.len(), 9, "ABCD-EFGH: {code}");
    assert_eq!(code.as_bytes()[4], b'-');
    assert!(
        code.chars().filter(|c| *c != '-').all(|c| "123456789ABCDEFGHJKLMNPQRSTVWXYZ".contains(c))
    );
    let Some((code_id, StreamEvent::PairingCode(event))) = stream.next().await else {
        panic!("the stream shows the code")
    };
    assert_eq!((event.code.as_str(), event.phone_number.as_str()), (code.as_str(), PHONE));

    // The QR shown before does nothing now; a new subscriber and a resume get the code.
    assert_error(
        app.sim_scan(&old_qr, PHONE, ScanOutcome::Success).await,
        StatusCode::CONFLICT,
        ErrorCode::QrExpired,
    )
    .await;
    let fresh = app.stream(&session).await.next().await.unwrap();
    assert_eq!(fresh, (code_id, StreamEvent::PairingCode(event.clone())));
    let resumed = app.stream_from(&session, Some(code_id - 1)).await.next().await.unwrap();
    assert_eq!(resumed.0, code_id);

    // Asking again for the same number: the same code, no new event.
    assert_eq!(app.pairing_code_ok(&session, PHONE).await, code);

    // A wrong code is refused on the phone; the right one (any case, no dash) links.
    assert_error(
        app.sim_enter_code("ZZZZ-ZZZZ", PHONE, ScanOutcome::Success).await,
        StatusCode::CONFLICT,
        ErrorCode::WrongCode,
    )
    .await;
    let typed = code.replace('-', "").to_lowercase();
    let entered = app.sim_enter_code(&typed, PHONE, ScanOutcome::Success).await;
    assert_eq!(entered.status(), StatusCode::ACCEPTED);
    let (connecting_id, connecting) = stream.next().await.unwrap();
    assert_eq!((connecting_id, connecting), (code_id + 1, StreamEvent::Connecting));
    let StreamEvent::Connected(connected) = stream.next_event().await else {
        panic!("the session connects")
    };
    assert_eq!(connected.phone_number, PHONE);
    assert_eq!(app.numbers_ok().await[0].channel_id, connected.channel_id);

    // Now the session no longer waits for a phone.
    assert_error(
        app.pairing_code(&app.token, &session.session_id, PHONE).await,
        StatusCode::CONFLICT,
        ErrorCode::SessionNotWaiting,
    )
    .await;
}

#[tokio::test]
async fn three_wrong_codes_end_the_session_with_code_rejected() {
    let app = spawn_app().await;
    let (session, mut stream, _) = app.session_showing_qr().await;
    app.pairing_code_ok(&session, PHONE).await;
    stream.next().await.unwrap();
    for left in ["2 more", "1 more", "third time"] {
        let refused = app.sim_enter_code("ZZZZ-ZZZZ", PHONE, ScanOutcome::Success).await;
        let message = assert_error(refused, StatusCode::CONFLICT, ErrorCode::WrongCode).await;
        assert!(message.contains(left), "{message}");
    }
    let event = stream.next_event().await;
    let StreamEvent::Failed(failed) = event else { panic!("it fails: {event:?}") };
    assert_eq!(failed.code, FailureCode::CodeRejected);
    stream.assert_closed().await;
}

#[tokio::test]
async fn a_phone_that_asked_no_code_cannot_type_one() {
    let app = spawn_app().await;
    let (session, _stream, _) = app.session_showing_qr().await;
    let code = app.pairing_code_ok(&session, PHONE).await;
    assert_error(
        app.sim_enter_code(&code, OTHER_PHONE, ScanOutcome::Success).await,
        StatusCode::NOT_FOUND,
        ErrorCode::CodeNotFound,
    )
    .await;
}

#[tokio::test]
async fn an_expired_code_is_followed_by_a_new_one() {
    let app = spawn_app_with(|args| args.code_ttl_secs = 1).await;
    let (session, mut stream, _) = app.session_showing_qr().await;
    let first = app.pairing_code_ok(&session, PHONE).await;
    let Some((_, StreamEvent::PairingCode(shown))) = stream.next().await else { panic!() };
    assert_eq!(shown.code, first);
    let Some((_, StreamEvent::PairingCode(next))) = stream.next().await else {
        panic!("a new code follows")
    };
    assert_ne!(next.code, first);
    // The expired code no longer links; the new one does.
    assert_error(
        app.sim_enter_code(&first, PHONE, ScanOutcome::Success).await,
        StatusCode::CONFLICT,
        ErrorCode::WrongCode,
    )
    .await;
    assert_eq!(
        app.sim_enter_code(&next.code, PHONE, ScanOutcome::Success).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn bad_requests_are_refused_with_their_codes_and_change_nothing() {
    let app = spawn_app().await;
    let (session, _stream, _) = app.session_showing_qr().await;
    assert_error(
        app.pairing_code(&app.token, &session.session_id, "56912345678").await,
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidPhoneNumber,
    )
    .await;
    let other = app.token("other", &[Scope::ChannelsConnect]).await;
    assert_error(
        app.pairing_code(&other, &session.session_id, PHONE).await,
        StatusCode::NOT_FOUND,
        ErrorCode::SessionNotFound,
    )
    .await;
    let reader = app.token("acme-reader", &[Scope::ChannelsRead]).await;
    assert_error(
        app.pairing_code(&reader, &session.session_id, PHONE).await,
        StatusCode::FORBIDDEN,
        ErrorCode::InsufficientScope,
    )
    .await;
    // Nothing changed: the session still offers its QR.
    let account = app.account().await;
    let id = session.session_id.parse().unwrap();
    assert!(app.state.engine.state(account, &id).unwrap().live_qr().is_some());

    // A session may ask codes for three numbers; the fourth is refused.
    for phone in [PHONE, OTHER_PHONE, "+14155550100"] {
        app.pairing_code_ok(&session, phone).await;
    }
    assert_error(
        app.pairing_code(&app.token, &session.session_id, "+14155550101").await,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooManyCodeRequests,
    )
    .await;
    // Only the last number's code is outstanding.
    assert_error(
        app.sim_enter_code("ABCD-EFGH", PHONE, ScanOutcome::Success).await,
        StatusCode::NOT_FOUND,
        ErrorCode::CodeNotFound,
    )
    .await;
}
