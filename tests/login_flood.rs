//! A flood of logins against a real HTTPS server: its own test binary, because the password thread's queues are
//! shared by every server in a process (a flood here would answer `busy` to other tests' logins).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use medimitra::core::Role;
use medimitra::credentials::LANE_CAPACITY;
use serde_json::json;
use support::PASSWORD;
use support::server::TestServer as Kiosk;
use support::server::{client_from, try_login};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_does_not_queue_the_owner_behind_it() {
    let k = Kiosk::start_with(|c| c.auth.max_attempts_per_address = 1000).await;
    k.add_account("Dr. Asha Rao", "asha@clinic.in", Role::Doctor);
    let owner = client_from(&k, [127, 0, 0, 2]);
    let (_, _, _, device) = try_login(&k, &owner, "asha@clinic.in", PASSWORD, None).await;
    let device = device.unwrap();
    // 200 logins for 200 different (unknown) e-mails from 200 addresses: no throttle applies, each one is hashed.
    let done = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u16, String, std::time::Instant)>::new()));
    let mut flood = Vec::new();
    for n in 0..200u8 {
        let (k_url, done) = (k.url("/api/auth/login"), done.clone());
        let c = client_from(&k, [127, 0, 2, n]);
        flood.push(tokio::spawn(async move {
            let resp = c.post(k_url).json(&json!({"email": format!("x{n}@y.in"), "password": "guess"})).send().await;
            let resp = resp.unwrap();
            let (status, body) = support::server::read(resp).await;
            done.lock().unwrap().push((
                status,
                body["code"].as_str().unwrap_or("").to_string(),
                std::time::Instant::now(),
            ));
        }));
    }
    // Once the first guess has been checked the rest are waiting for the password thread.
    for _ in 0..600 {
        if done.lock().unwrap().iter().any(|d| d.0 == 401) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = std::time::Instant::now();
    let (status, _, _, _) = try_login(&k, &owner, "asha@clinic.in", PASSWORD, Some(&device)).await;
    let answered = std::time::Instant::now();
    assert_eq!(status, 200);
    for f in flood {
        f.await.unwrap();
    }
    let done = done.lock().unwrap().clone();
    // Guesses answered while the owner waited: before the bounded, ordered queues, every waiting guess (~190); with
    // one first-come queue of LANE_CAPACITY the owner waits behind a full lane (8) or is refused `busy`. With the
    // priority lane it is the guess being hashed when the owner's job arrives, plus the guesses whose answers were
    // still on their way back or that were hashed while the owner's own request waited for the two cores the flood's
    // 200 TLS handshakes share (seen: 0 to 3 on a loaded 2-core CI machine, and 5 once on the development machine
    // during a full test run: the answers already computed but still on their way count too). So the bound is one
    // less than the full lane a first-come queue would answer first; the password lane's exact order is checked
    // without HTTP by `credentials::password`'s unit test.
    let ahead = done.iter().filter(|d| d.0 == 401 && d.2 > sent && d.2 < answered).count();
    assert!(ahead < LANE_CAPACITY, "{ahead} guesses were checked ahead of the owner");
    // The queue's bound answers the rest at once, with a code and a time to retry.
    assert!(done.iter().any(|d| d.0 == 503 && d.1 == "busy"), "the flood met the bound");
    assert!(done.iter().all(|d| d.0 == 401 || (d.0 == 503 && d.1 == "busy")));
    k.stop().await;
}
