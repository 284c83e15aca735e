//! Readings kept with an appointment, and their FHIR R4 form. Which readings are kept (stable ones only, never the
//! waveform), which appointment they belong to, and how each becomes an `Observation` with its LOINC code and UCUM
//! unit. Pure: the store saves what [`Observation`] holds; the API sends what [`fhir_bundle`] builds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{Protocol, StableOximetry};

/// What was measured. Each kind has one LOINC code and one UCUM unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationKind {
    /// Oxygen saturation by pulse oximetry.
    Spo2,
    /// Heart rate (the oximeter's pulse rate).
    HeartRate,
    /// Body weight.
    BodyWeight,
}

impl ObservationKind {
    pub const ALL: [ObservationKind; 3] =
        [ObservationKind::Spo2, ObservationKind::HeartRate, ObservationKind::BodyWeight];

    /// The word kept in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ObservationKind::Spo2 => "spo2",
            ObservationKind::HeartRate => "heart_rate",
            ObservationKind::BodyWeight => "body_weight",
        }
    }

    pub fn parse(s: &str) -> Option<ObservationKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// LOINC code and display (loinc.org): 59408-5 "Oxygen saturation in Arterial blood by Pulse oximetry", 8867-4
    /// "Heart rate", 29463-7 "Body weight" (the codes the FHIR R4 vital-signs profiles use).
    pub fn loinc(self) -> (&'static str, &'static str) {
        match self {
            ObservationKind::Spo2 => ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
            ObservationKind::HeartRate => ("8867-4", "Heart rate"),
            ObservationKind::BodyWeight => ("29463-7", "Body weight"),
        }
    }

    /// UCUM code and the unit as shown.
    pub fn ucum(self) -> (&'static str, &'static str) {
        match self {
            ObservationKind::Spo2 => ("%", "%"),
            ObservationKind::HeartRate => ("/min", "beats/minute"),
            ObservationKind::BodyWeight => ("kg", "kg"),
        }
    }
}

/// One reading kept with an appointment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub kind: ObservationKind,
    pub value: f64,
    /// The device's protocol, naming the device.
    pub device: Protocol,
    pub taken_at: DateTime<Utc>,
}

/// The two observations of a stable oximetry run.
pub fn from_oximetry(stable: StableOximetry, device: Protocol, at: DateTime<Utc>) -> [Observation; 2] {
    [
        Observation { kind: ObservationKind::Spo2, value: f64::from(stable.spo2_percent), device, taken_at: at },
        Observation { kind: ObservationKind::HeartRate, value: f64::from(stable.pulse_bpm), device, taken_at: at },
    ]
}

/// Keeps one weight per weighing: a stable weight is stored when it is the first since the scale was empty or
/// settling, not again for every line the scale repeats while the patient stands still.
#[derive(Debug, Default)]
pub struct WeighingRule {
    /// Whether the current weighing has been stored.
    stored: bool,
}

impl WeighingRule {
    /// Takes the next scale reading: the weight to store, if this reading completes a weighing.
    pub fn push(&mut self, reading: &super::Reading) -> Option<f64> {
        match reading.storable_weight_kg() {
            Some(kg) if !self.stored => {
                self.stored = true;
                Some(kg)
            }
            Some(_) => None,
            None => {
                // Settling, overload, or an empty scale (zero): the next stable weight is a new weighing.
                self.stored = false;
                None
            }
        }
    }
}

/// The appointment a reading belongs to: the one in a call, or else the only one checked in at the kiosk. With
/// several patients checked in and none in a call, nobody can say whose finger is in the clip: nothing is kept.
pub fn owner(in_call: Option<i64>, checked_in: &[i64]) -> Option<i64> {
    in_call.or(match checked_in {
        [only] => Some(*only),
        _ => None,
    })
}

/// A FHIR R4 `Bundle` (a `searchset`: the answer to "this appointment's observations") of the appointment's observations: each a vital-signs `Observation` with
/// its LOINC code, a UCUM `valueQuantity`, `subject` the patient, `effectiveDateTime` when it was measured, and the
/// device named (`device.display`, as the kiosk keeps no `Device` resources).
pub fn fhir_bundle(patient_id: i64, appointment_id: i64, observations: &[(i64, Observation)]) -> Value {
    let entries: Vec<Value> = observations
        .iter()
        .map(|(id, o)| {
            let (code, display) = o.kind.loinc();
            let (unit_code, unit) = o.kind.ucum();
            let resource = json!({
                "resourceType": "Observation",
                "id": format!("obs-{id}"),
                "status": "final",
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs"
                }]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
                "subject": {"reference": format!("Patient/{patient_id}")},
                "encounter": {"reference": format!("Encounter/appointment-{appointment_id}")},
                "effectiveDateTime": o.taken_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "valueQuantity": {
                    "value": o.value,
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit_code
                },
                "device": {"display": device_name(o.device)}
            });
            json!({"resource": resource, "search": {"mode": "match"}})
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries
    })
}

/// The device as a person reads it.
pub fn device_name(device: Protocol) -> &'static str {
    match device {
        Protocol::Cms50dLegacy | Protocol::Cms50dV46 => "Contec CMS50D+ pulse oximeter",
        Protocol::AndStandard => "A&D weighing scale",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vitals::Reading;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T10:15:30Z").map(|d| d.with_timezone(&Utc)).unwrap_or_default()
    }

    #[test]
    fn a_stable_oximetry_run_is_kept_as_spo2_and_heart_rate() {
        let [spo2, pulse] =
            from_oximetry(StableOximetry { spo2_percent: 97, pulse_bpm: 72 }, Protocol::Cms50dLegacy, at());
        assert_eq!((spo2.kind, spo2.value), (ObservationKind::Spo2, 97.0));
        assert_eq!((pulse.kind, pulse.value), (ObservationKind::HeartRate, 72.0));
    }

    #[test]
    fn one_weight_is_kept_per_weighing() {
        let mut rule = WeighingRule::default();
        let stable = Reading::Weight { kg: 70.2 };
        assert_eq!(rule.push(&Reading::UnstableWeight { kg: 69.0 }), None);
        assert_eq!(rule.push(&stable), Some(70.2));
        assert_eq!(rule.push(&stable), None, "the same weighing repeated");
        assert_eq!(rule.push(&Reading::Weight { kg: 0.0 }), None, "the scale is empty");
        assert_eq!(rule.push(&Reading::Weight { kg: 55.0 }), Some(55.0), "the next patient");
    }

    #[test]
    fn readings_belong_to_the_call_else_to_the_only_patient_checked_in() {
        assert_eq!(owner(Some(7), &[3, 4]), Some(7));
        assert_eq!(owner(None, &[3]), Some(3));
        assert_eq!(owner(None, &[3, 4]), None, "whose finger is it?");
        assert_eq!(owner(None, &[]), None);
    }

    #[test]
    fn the_bundle_names_loinc_ucum_subject_time_and_device() {
        let obs = Observation { kind: ObservationKind::Spo2, value: 97.0, device: Protocol::Cms50dV46, taken_at: at() };
        let b = fhir_bundle(12, 34, &[(5, obs)]);
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["total"], 1);
        let r = &b["entry"][0]["resource"];
        assert_eq!(
            r["code"]["coding"][0],
            json!({"system": "http://loinc.org", "code": "59408-5",
            "display": "Oxygen saturation in Arterial blood by Pulse oximetry"})
        );
        assert_eq!(
            r["valueQuantity"],
            json!({"value": 97.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"})
        );
        assert_eq!(r["subject"]["reference"], "Patient/12");
        assert_eq!(r["effectiveDateTime"], "2026-12-02T10:15:30Z");
        assert_eq!(r["device"]["display"], "Contec CMS50D+ pulse oximeter");
        let weight = ObservationKind::BodyWeight;
        assert_eq!((weight.loinc().0, weight.ucum().0), ("29463-7", "kg"));
        assert_eq!((ObservationKind::HeartRate.loinc().0, ObservationKind::HeartRate.ucum().0), ("8867-4", "/min"));
    }

    #[test]
    fn kinds_round_trip_through_their_database_words() {
        for k in ObservationKind::ALL {
            assert_eq!(ObservationKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ObservationKind::parse("blood_sugar"), None);
    }
}
