//! Search's own tests: snippets, prepared fields, the one-pass judge
//! against the per-field one, and the kept form of a case's text.

use super::*;

#[test]
fn snippets() {
    let n = Needle::new("SLEEP").unwrap();
    assert_eq!(n.snippet("Poor Sleep.").unwrap(), "Poor Sleep.");
    let long = format!("{} sleep\n\n{}", "a".repeat(50), "b".repeat(50));
    let s = n.snippet(&long).unwrap();
    assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
    assert!(s.contains("a sleep b"), "{s}");
    assert!(Needle::new("").is_none());
    assert!(n.snippet("sle").is_none());
    // A character whose lowercase is longer than itself.
    let n = Needle::new("i̇stanbul").unwrap();
    assert_eq!(n.snippet("İstanbul").unwrap(), "İstanbul");
    assert_eq!(
        Needle::new("ß").unwrap().snippet("Straße").unwrap(),
        "Straße"
    );
}

#[test]
fn prepared_fields_match_as_the_slow_path_does() {
    let q = Query::new("SLEEP diary").unwrap();
    let plain = [Field::new("plan".into(), "Keep a Sleep diary.".into())];
    assert!(plain[0].aligned);
    assert_eq!(
        q.judge(&[("plan".into(), "Keep a Sleep diary.".into())]),
        Some(("plan".into(), "Keep a Sleep diary.".into(), 111))
    );
    // "İ" lowercases to two characters: the slow path, same answer.
    let turkish = [Field::new("name".into(), "Ayşe İstanbul".into())];
    assert!(!turkish[0].aligned);
    let q = Query::new("i̇stanbul").unwrap();
    let held = &mut Vec::new();
    let judged = q.judge_in(&turkish, held).unwrap();
    assert_eq!(
        q.snippet(&turkish, judged).map(|j| j.1),
        Some("Ayşe İstanbul".to_string())
    );
    assert_eq!(Query::new("diary").unwrap().judge_in(&turkish, held), None);
}

#[test]
fn a_case_index_is_kept_and_read_back_whole() {
    let index = CaseIndex::new(vec![
        SearchUnit {
            note_id: None,
            fields: vec![Field::new("name".into(), "Ayşe İstanbul".into())],
        },
        SearchUnit {
            note_id: Some("n1".into()),
            fields: vec![Field::new("plan".into(), "Keep a Sleep diary.".into())],
        },
    ]);
    let again = CaseIndex::from_bytes(&index.to_bytes()).unwrap();
    for q in ["sleep diary", "i̇stanbul", "ayşe"] {
        assert_eq!(search_units(q, &again), search_units(q, &index), "{q}");
        assert!(!search_units(q, &again).is_empty(), "{q}");
    }
    let bytes = index.to_bytes();
    assert!(CaseIndex::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(CaseIndex::from_bytes(&[bytes.clone(), vec![0]].concat()).is_err());
}

/// One pass over a case's text finds what a look into each field
/// finds: matches that would span two fields, characters whose
/// lowercase is longer, a word held many times in one field.
#[test]
fn one_pass_over_a_case_judges_as_each_field_alone_does() {
    let unit = |id: Option<&str>, fields: &[(&str, &str)]| SearchUnit {
        note_id: id.map(str::to_string),
        fields: fields
            .iter()
            .map(|(k, v)| Field::new(k.to_string(), v.to_string()))
            .collect(),
    };
    let index = CaseIndex::new(vec![
        unit(
            None,
            &[("name", "Ayşe İstanbul"), ("profile.goals", "sleep")],
        ),
        unit(Some("n1"), &[("plan", "sleep sleep diary"), ("risk", "")]),
        unit(
            Some("n2"),
            &[("plan", "diary"), ("subjective", "sleep\0diary")],
        ),
        unit(Some("n3"), &[("plan", "Straße, SLEEP DIARY, i̇stanbul")]),
        unit(Some("n4"), &[]),
        unit(Some("n5"), &[("plan", "slee"), ("assessment", "p diary")]),
    ]);
    let queries = [
        "sleep diary",
        "diary sleep",
        "sleep",
        "p diary",
        "ep\0di",
        "ep\0sl",
        "i̇stanbul",
        "straße sleep",
        "ayşe",
        "ß",
        "missing",
        "sleep missing",
    ];
    for q in queries {
        let query = Query::new(q).unwrap();
        let one_pass = index.matches(&query);
        let mut held = Vec::new();
        let each_field: Vec<(usize, Judged)> = index
            .units
            .iter()
            .enumerate()
            .filter_map(|(i, u)| Some((i, query.judge_in(&u.fields, &mut held)?)))
            .collect();
        assert_eq!(one_pass, each_field, "{q:?}");
    }
    let found = |q: &str| index.matches(&Query::new(q).unwrap()).len();
    assert_eq!(
        found("sleep diary"),
        3,
        "not n5, whose \"sleep\" spans two fields"
    );
    assert_eq!(found("ep\0di"), 1, "within a field");
    assert_eq!(found("ep\0sl"), 0, "across two fields");
}
