//! The adaptation rules, one behaviour per test.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn hd() -> Ladder {
    Ladder::new(ladder(1280, 720, 30), 2000)
}

fn input(video_kbps: u32) -> AdaptInput {
    AdaptInput { video_kbps, encoded_fps: 30.0 }
}

#[test]
fn maintain_resolution_keeps_the_camera_size_at_any_bitrate() {
    let rungs = DegradationPreference::MaintainResolution.rungs(ladder(1280, 720, 30));
    let mut l = Ladder::new(rungs, 300);
    assert_eq!((l.rung().width, l.rung().height), (1280, 720));
    for t in 0..100 {
        l.update(ms(t * 500), AdaptInput { video_kbps: 200, encoded_fps: 10.0 });
    }
    assert_eq!((l.rung().width, l.rung().height), (1280, 720));
    assert_eq!(DegradationPreference::Balanced.rungs(ladder(1280, 720, 30)).len(), 6);
}

#[test]
fn the_ladder_fits_the_camera() {
    let l = ladder(1280, 720, 30);
    let sizes: Vec<_> = l.iter().map(|r| (r.width, r.height, r.fps)).collect();
    assert_eq!(
        sizes,
        [(1280, 720, 30), (960, 540, 30), (640, 360, 30), (480, 270, 30), (320, 180, 30), (320, 180, 15)]
    );
    let small = ladder(640, 360, 25);
    assert_eq!(small[0], Rung { width: 640, height: 360, fps: 25, min_kbps: 250 });
    assert_eq!(small.len(), 4);
    // A 15 fps camera: the bottom two rungs are one, with the floor of the lower.
    let slow: Vec<_> = ladder(640, 360, 15).iter().map(|r| (r.width, r.fps, r.min_kbps)).collect();
    assert_eq!(slow, [(640, 15, 250), (480, 15, 150), (320, 15, 0)]);
    let odd = ladder(800, 600, 30);
    assert_eq!((odd[0].width, odd[0].height), (800, 600), "the camera's own size on top");
    assert!(odd[0].min_kbps >= odd[1].min_kbps);
}

#[test]
fn it_starts_on_the_rung_the_start_bitrate_affords() {
    assert_eq!(Ladder::new(ladder(1280, 720, 30), 800).rung().width, 960);
    assert_eq!(Ladder::new(ladder(1280, 720, 30), 2500).rung().width, 1280);
    assert_eq!(Ladder::new(ladder(1280, 720, 30), 100).rung().width, 320);
}

#[test]
fn a_short_dip_does_not_step_down_but_a_lasting_one_does() {
    let mut l = hd();
    assert!(!l.update(ms(0), input(850)).changed, "just under 900: wait");
    assert!(!l.update(ms(500), input(880)).changed);
    let d = l.update(ms(1000), input(850));
    assert!(d.changed);
    assert_eq!((d.rung.width, d.limit), (960, LimitReason::Bandwidth));
}

#[test]
fn a_budget_far_short_steps_down_at_once_to_what_it_affords() {
    let mut l = hd();
    let d = l.update(ms(0), input(200));
    assert_eq!((d.rung.width, d.rung.fps, d.changed), (480, 30, true));
}

#[test]
fn stepping_up_needs_a_margin_held_for_seconds() {
    let mut l = Ladder::new(ladder(1280, 720, 30), 400);
    assert_eq!(l.rung().width, 640);
    // 600 affords 960x540 (500) but not with the 25 % margin: stay.
    for t in 0..20 {
        assert!(!l.update(ms(t * 500), input(600)).changed);
    }
    // 700 has the margin; after 4 s one step up, not two.
    let mut ups = Vec::new();
    for t in 20..40 {
        let d = l.update(ms(t * 500), input(700));
        if d.changed {
            ups.push((t, d.rung.width));
        }
    }
    assert_eq!(ups, [(28, 960)]);
}

#[test]
fn an_encoder_that_cannot_keep_up_steps_down_and_stays_down_for_a_while() {
    let mut l = hd();
    let slow = AdaptInput { video_kbps: 2500, encoded_fps: 18.0 };
    for t in 0..6 {
        assert!(!l.update(ms(t * 500), slow).changed, "3 s of starving first");
    }
    let d = l.update(ms(3000), slow);
    assert_eq!((d.rung.width, d.limit, d.changed), (960, LimitReason::Cpu, true));
    // Healthy again at the lower rung, with plenty of bandwidth: no step up while the hold lasts.
    for t in 7..60 {
        let d = l.update(ms(t * 500), input(2500));
        assert!(!d.changed, "held at {t}");
        assert_eq!(d.limit, LimitReason::Cpu);
    }
    let mut up = None;
    for t in 60..80 {
        if l.update(ms(t * 500), input(2500)).changed {
            up = Some(t);
            break;
        }
    }
    assert_eq!(up, Some(74), "4 s of room after the 30 s hold");
    assert_eq!(l.limit(), LimitReason::None);
}

#[test]
fn a_throttled_encoder_whose_frames_come_in_bursts_steps_down() {
    // A CPU quota hands out time in slices: the readings swing around the line (seen in CI at 480x270@20 under a
    // cgroup limit: 11.7, 5.9, 10.2, 13.4, 27.5, 16.7, ...), and a rule that needed every reading low never fired.
    let mut l = Ladder::new(ladder(1280, 720, 30), 200);
    assert_eq!((l.rung().width, l.rung().fps), (480, 30));
    let swing = [11.7, 5.9, 10.2, 13.4, 27.5, 16.7, 16.7, 11.7, 10.0, 13.4];
    let mut stepped = None;
    for t in 0..20u64 {
        let d = l.update(ms(t * 500), AdaptInput { video_kbps: 200, encoded_fps: swing[t as usize % swing.len()] });
        if d.changed {
            stepped = Some((t, d.rung.width, d.limit));
            break;
        }
    }
    assert_eq!(stepped, Some((6, 320, LimitReason::Cpu)), "a full 3 s window, median 11.7 fps");
}

#[test]
fn the_encoders_start_is_not_starving() {
    // Seen in the network bench with the mean of the window: the first readings of a call (the encoder and the
    // transport starting) pulled a healthy encoder's mean under the line and held the picture down for 30 s.
    let mut l = Ladder::new(ladder(1280, 720, 30), 600);
    for (t, fps) in [0.0, 10.0, 30.0, 30.0, 29.9, 30.0, 30.0, 30.0, 30.0, 30.0].into_iter().enumerate() {
        let d = l.update(ms(t as u64 * 500), AdaptInput { video_kbps: 600, encoded_fps: fps });
        assert_ne!(d.limit, LimitReason::Cpu, "at {t}");
    }
}

#[test]
fn a_short_dip_of_the_encoder_is_not_starving() {
    let mut l = hd();
    for t in 0..40u64 {
        // One slow reading in every six (a keyframe, a busy moment): the mean stays well over 80 %.
        let fps = if t % 6 == 0 { 12.0 } else { 30.0 };
        assert!(!l.update(ms(t * 500), AdaptInput { video_kbps: 2500, encoded_fps: fps }).changed, "at {t}");
    }
}

#[test]
fn the_top_rung_is_not_limited() {
    let mut l = hd();
    assert_eq!(l.update(ms(0), input(2500)).limit, LimitReason::None);
}

#[test]
fn report_rate_control_backs_off_on_loss_and_grows_slowly() {
    let mut c = ReportRateControl::new(1000, 300, 2500);
    assert_eq!(c.on_report(ms(0), 0.20, 1000.0), 900, "20 % loss: 10 % less");
    assert_eq!(c.on_report(ms(500), 0.20, 1000.0), 900, "at most once a second");
    assert_eq!(c.on_report(ms(1500), 0.05, 900.0), 900, "hold between 2 and 10 %");
    assert_eq!(c.on_report(ms(2500), 0.0, 900.0), 945);
    // Never above 1.5x what is really sent.
    let mut c = ReportRateControl::new(1000, 300, 2500);
    for t in 0..30 {
        c.on_report(Duration::from_secs(t), 0.0, 400.0);
    }
    assert_eq!(c.on_report(Duration::from_secs(31), 0.0, 400.0), 1000);
    let mut c = ReportRateControl::new(400, 300, 2500);
    for t in 0..10 {
        c.on_report(Duration::from_secs(t), 0.9, 400.0);
    }
    assert_eq!(c.on_report(Duration::from_secs(11), 0.9, 400.0), 300, "the floor holds");
}

#[test]
fn opus_protects_once_loss_is_seen() {
    assert_eq!(opus_loss_percent(0.0, false), 0);
    assert_eq!(opus_loss_percent(0.0, true), 5);
    assert_eq!(opus_loss_percent(0.03, true), 5);
    assert_eq!(opus_loss_percent(0.08, true), 12);
    assert_eq!(opus_loss_percent(0.5, true), 25);
}

#[test]
fn video_fec_grows_with_loss_and_round_trip() {
    assert_eq!(video_fec_percent(0.005, ms(50)), 0);
    assert_eq!(video_fec_percent(0.03, ms(50)), 8);
    assert_eq!(video_fec_percent(0.03, ms(300)), 12);
    assert_eq!(video_fec_percent(0.5, ms(300)), 40);
}

#[test]
fn the_jitter_buffer_waits_a_round_trip_for_retransmissions() {
    assert_eq!(video_jitter_latency(ms(5), ms(60)), ms(110));
    assert_eq!(video_jitter_latency(ms(0), ms(200)), ms(200), "the floor");
    // 40 ms each way: a request and its retransmission take ~100 ms; room for a second one.
    assert_eq!(video_jitter_latency(ms(82), ms(60)), ms(264));
    assert_eq!(video_jitter_latency(ms(600), ms(60)), ms(1000), "at most a second");
}

#[test]
fn the_send_budget_keeps_audio_a_reserve_and_the_fec_within_the_estimate() {
    let bounds = (100, 2500);
    // Plenty: audio off the top, 15 % reserve, the video and 10 % FEC share the rest.
    let s = split_send_budget(1040, 40, 10, bounds);
    assert_eq!(s, SendSplit { video_kbps: 772, fec_percent: 10 });
    assert!(s.video_kbps * (100 + s.fec_percent) / 100 + 40 <= 1040 * 85 / 100 + 40);
    // No FEC wanted: the video takes all of its room.
    assert_eq!(split_send_budget(1040, 40, 0, bounds), SendSplit { video_kbps: 850, fec_percent: 0 });
    // A slow link with heavy loss: at the video's floor the FEC gives way instead of going over the estimate.
    let s = split_send_budget(300, 40, 40, bounds);
    assert_eq!(s.video_kbps, 157);
    assert!(s.fec_percent <= 40);
    assert!(s.video_kbps * (100 + s.fec_percent) / 100 <= (300 - 40) * 85 / 100);
    let s = split_send_budget(150, 40, 40, bounds);
    assert_eq!(s, SendSplit { video_kbps: 100, fec_percent: 0 });
    // Below the audio: the floor, no FEC.
    assert_eq!(split_send_budget(20, 40, 40, bounds), SendSplit { video_kbps: 100, fec_percent: 0 });
    // The ceiling holds.
    assert_eq!(split_send_budget(20000, 40, 0, bounds).video_kbps, 2500);
    // A misconfigured ceiling below the floor does not panic.
    assert_eq!(split_send_budget(1000, 40, 0, (300, 200)).video_kbps, 300);
}

#[test]
fn a_reading_without_a_report_keeps_the_last_round_trip_and_the_jitter_buffers_wait() {
    let floor = ms(200);
    let mut rtt = RoundTrip::default();
    assert_eq!(rtt.update(None), None);
    assert_eq!(rtt.update(Some(ms(600))), Some(ms(600)));
    let with_report = video_jitter_latency(ms(600), floor);
    // The next readings carry no report (or a zero one): the wait stays where the last report put it.
    for reading in [None, Some(ms(0)), None] {
        let acted_on = rtt.update(reading);
        assert_eq!(acted_on, Some(ms(600)));
        assert_eq!(acted_on.map_or(floor, |r| video_jitter_latency(r, floor)), with_report);
    }
    assert_eq!(rtt.update(Some(ms(80))), Some(ms(80)));
}

#[test]
fn a_small_rung_is_not_given_the_whole_link() {
    let l = ladder(1280, 720, 30);
    let caps: Vec<u32> = l.iter().map(Rung::max_useful_kbps).collect();
    assert_eq!(caps, [4147, 2332, 1036, 583, 259, 129]);
    // Every rung's cap leaves room above the next rung's threshold (with the 25 % margin to step up), except the
    // bottom's: the ladder steps up on the uncapped budget, not on what the encoder is given.
    for pair in l.windows(2) {
        assert!(pair[1].max_useful_kbps() < pair[0].max_useful_kbps());
    }
}

/// Frames at 30 fps (timestamps as a live source makes them) through a dropper at `fps`: how many of `n` pass.
fn passed_of(n: u64, fps: u32, jitter_ns: impl Fn(u64) -> i64) -> usize {
    let mut d = FrameDropper::default();
    (0..n).filter(|i| d.pass((i * 1_000_000_000 / 30).saturating_add_signed(jitter_ns(*i)), fps)).count()
}

#[test]
fn the_frame_dropper_keeps_a_rungs_rate_deciding_each_frame_at_once() {
    assert_eq!(passed_of(90, 30, |_| 0), 90, "the camera's own rate");
    assert_eq!(passed_of(90, 15, |_| 0), 45, "half");
    assert_eq!(passed_of(90, 20, |_| 0), 60, "two in three");
    assert_eq!(passed_of(90, 0, |_| 0), 90, "no rate: everything");
    // A camera's timestamps jitter by a few ms around 30 fps: none is dropped at 30.
    assert_eq!(passed_of(300, 30, |i| if i % 2 == 0 { 3_000_000 } else { -3_000_000 }), 300);
}

#[test]
fn the_frame_dropper_starts_again_after_a_gap() {
    let mut d = FrameDropper::default();
    assert!(d.pass(0, 15));
    assert!(!d.pass(33_333_333, 15));
    // A second without frames (the camera stalled): the next one goes, and the rate counts from it.
    assert!(d.pass(1_033_333_333, 15));
    assert!(!d.pass(1_066_666_666, 15));
    assert!(d.pass(1_100_000_000, 15));
}
