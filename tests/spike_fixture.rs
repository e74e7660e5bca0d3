use poortwachter::credential::jsonld::Contexts;
use poortwachter::credential::proof;
use poortwachter::keys::PublicKey;

#[test]
fn fixtures_verify() {
    let dir = std::path::Path::new("../shared/reference/nuts-node-testsuite");
    let jwk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("public_key.jwk.json")).unwrap()).unwrap();
    let key = PublicKey::from_jwk(&jwk).unwrap();
    let contexts = Contexts::embedded();
    for f in ["authcred_001.ldjson", "orgcred_001.ldjson"] {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        let m = v.as_object().unwrap();
        let issuer = m["issuer"].as_str().unwrap();
        let input = proof::prepare(&contexts, m, issuer).unwrap();
        assert!(key.verify(&input.alg, &input.signing_input, &input.signature), "{f}");
    }
}
