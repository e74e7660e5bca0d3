use super::*;

const OCL_NS: &str = "xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release2/";
const ZAL_NS: &str = "xmlns://afsprakenstelsel.medmij.nl/zorgaanbiederslijst/release2/";

/// An OAuth client list: line 1 the root, line 2 Tijdstempel, line 3 Volgnummer, line 4
/// `<OAuthclients>`, `clients` from line 5 on.
fn ocl(clients: &str) -> String {
    format!(
        "<OAuthclientlist xmlns=\"{OCL_NS}\">\n<Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel>\n<Volgnummer>17</Volgnummer>\n<OAuthclients>\n{clients}</OAuthclients>\n</OAuthclientlist>\n"
    )
}

/// One `<OAuthclient>` on one line.
fn client(host: &str, name: &str) -> String {
    format!("<OAuthclient><Hostname>{host}</Hostname><OAuthclientOrganisatienaam>{name}</OAuthclientOrganisatienaam></OAuthclient>\n")
}

fn ocl_error(doc: &str) -> String {
    parse_oauth_client_list(doc.as_bytes())
        .unwrap_err()
        .to_string()
}

/// A zorgaanbieder list with the zorgaanbieders from line 5 on.
fn zal(aanbieders: &str) -> String {
    format!(
        "<Zorgaanbiederslijst xmlns=\"{ZAL_NS}\">\n<Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel>\n<Volgnummer>3</Volgnummer>\n<Zorgaanbieders>\n{aanbieders}</Zorgaanbieders>\n</Zorgaanbiederslijst>\n"
    )
}

/// A release-2 `<Gegevensdienst>` on one line, without or with its two endpoints.
fn zal_dienst(id: &str, endpoints: bool) -> String {
    let endpoints = if endpoints {
        "<AuthorizationEndpoint><AuthorizationEndpointuri>https://za.example.nl/authorize</AuthorizationEndpointuri></AuthorizationEndpoint><TokenEndpoint><TokenEndpointuri>https://za.example.nl/token</TokenEndpointuri></TokenEndpoint>"
    } else {
        ""
    };
    format!("<Gegevensdienst><GegevensdienstId>{id}</GegevensdienstId>{endpoints}<Systeemrollen><Systeemrol><Systeemrolcode>RS</Systeemrolcode><ResourceEndpoint><ResourceEndpointuri>https://za.example.nl/fhir</ResourceEndpointuri></ResourceEndpoint></Systeemrol></Systeemrollen></Gegevensdienst>")
}

fn zal_error(doc: &str) -> String {
    parse_zorgaanbiederslijst(doc.as_bytes())
        .unwrap_err()
        .to_string()
}

fn at(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

// --- the sample lists in medmij/ ---------------------------------------------------------------

#[test]
fn reads_the_sample_oauth_client_list() {
    let list =
        parse_oauth_client_list(include_bytes!("../../../medmij/MedMij_OAuthclientlist.xml"))
            .unwrap();
    assert_eq!(list.tijdstempel, at("2026-01-15T09:30:00Z"));
    assert_eq!(list.volgnummer, 17);
    assert_eq!(
        list.clients,
        vec![
            OAuthClient {
                hostname: "pgo.example.nl".into(),
                organisatienaam: "Voorbeeld PGO".into(),
                gegevensdiensten: Some(vec!["48".into()]),
            },
            OAuthClient {
                hostname: "medmij.deenigeechtepgo.nl".into(),
                organisatienaam: "De Enige Echte PGO".into(),
                gegevensdiensten: None,
            },
            OAuthClient {
                hostname: "pgo.verzamelaar.example.nl".into(),
                organisatienaam: "Verzamel-PGO zonder Delen".into(),
                gegevensdiensten: Some(vec!["1".into()]),
            },
        ]
    );
    let pgo = list.client("pgo.example.nl").unwrap();
    assert!(pgo.allows("48"));
    assert!(!pgo.allows("1"));
    let old_style = list.client("medmij.deenigeechtepgo.nl").unwrap();
    assert!(old_style.allows("48") && old_style.allows("1"));
    assert!(!list
        .client("pgo.verzamelaar.example.nl")
        .unwrap()
        .allows("48"));
    assert!(list.client("PGO.example.nl").is_none());
    assert!(list.client("other.example.nl").is_none());
}

#[test]
fn reads_the_sample_whitelist() {
    let list = parse_whitelist(include_bytes!("../../../medmij/MedMij_Whitelist.xml")).unwrap();
    assert_eq!(list.tijdstempel, at("2026-01-15T09:30:00Z"));
    assert_eq!(list.volgnummer, 42);
    assert_eq!(
        list.hostnames
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "medmij.deenigeechtepgo.nl",
            "medmij.umcharderwijk.example.nl",
            "pgo.example.nl"
        ]
    );
    assert!(list.contains("pgo.example.nl"));
    assert!(!list.contains("pgo.verzamelaar.example.nl"));
}

#[test]
fn reads_the_sample_gegevensdienst_names() {
    let list = parse_gegevensdienst_names(include_bytes!(
        "../../../medmij/MedMij_Gegevensdienstnamenlijst.xml"
    ))
    .unwrap();
    assert_eq!(list.volgnummer, 9);
    assert_eq!(
        list.names,
        BTreeMap::from([
            ("1".to_owned(), "Basisgegevens zorg".to_owned()),
            (
                "48".to_owned(),
                "Documenten delen met uw zorgverlener".to_owned()
            ),
        ])
    );
    assert_eq!(
        list.weergavenaam("48"),
        Some("Documenten delen met uw zorgverlener")
    );
    assert_eq!(list.weergavenaam("53"), None);
}

#[test]
fn reads_the_sample_zorgaanbieder_list() {
    let list = parse_zorgaanbiederslijst(include_bytes!(
        "../../../medmij/MedMij_Zorgaanbiederslijst.xml"
    ))
    .unwrap();
    assert_eq!(list.volgnummer, 311);
    assert_eq!(list.zorgaanbieders.len(), 2);
    let umc = list.zorgaanbieder("umcharderwijk").unwrap();
    assert_eq!(list.zorgaanbieder("umcharderwijk@medmij"), Some(umc));
    assert_eq!(umc.naam, "umcharderwijk@medmij");
    assert_eq!(umc.aanbiedernaam(), "umcharderwijk");
    assert_eq!(umc.aanbiedertype, None);
    assert_eq!(
        umc.gegevensdiensten,
        vec![ZalGegevensdienst {
            id: "48".into(),
            interfaceversie: None,
            authorization_endpoint: Some(
                "https://medmij.umcharderwijk.example.nl/medmij/authorize".into()
            ),
            token_endpoint: Some("https://medmij.umcharderwijk.example.nl/medmij/token".into()),
            systeemrollen: vec![Systeemrol {
                code: "PDFA-RS".into(),
                resource_endpoint: "https://medmij.umcharderwijk.example.nl/medmij/fhir".into(),
            }],
        }]
    );
    assert_eq!(umc.gegevensdienst("48").count(), 1);
    assert_eq!(umc.gegevensdienst("1").count(), 0);
    let other = list.zorgaanbieder("eenofanderezorgaanbieder").unwrap();
    assert_eq!(
        other.gegevensdiensten[0].token_endpoint.as_deref(),
        Some("https://medmij.eenofandere.example.nl:8443/oauth/token")
    );
    assert!(list.zorgaanbieder("umc").is_none());
}

// --- accepted variants -------------------------------------------------------------------------

#[test]
fn reads_the_newer_zorgaanbieder_shape() {
    let doc = zal(&format!(
        "<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam><Aanbiedertype>ZA</Aanbiedertype>\n<Interfaceversies>\n<Interfaceversie><InterfaceversieId>1</InterfaceversieId><Gegevensdiensten>{}</Gegevensdiensten></Interfaceversie>\n<Interfaceversie><InterfaceversieId>2</InterfaceversieId><Gegevensdiensten>{}{}</Gegevensdiensten></Interfaceversie>\n</Interfaceversies></Zorgaanbieder>\n",
        zal_dienst("48", true),
        zal_dienst("48", false),
        zal_dienst("49", true),
    ));
    let list = parse_zorgaanbiederslijst(doc.as_bytes()).unwrap();
    let umc = list.zorgaanbieder("umcharderwijk").unwrap();
    assert_eq!(umc.aanbiedertype.as_deref(), Some("ZA"));
    let found: Vec<_> = umc
        .gegevensdiensten
        .iter()
        .map(|g| {
            (
                g.id.as_str(),
                g.interfaceversie,
                g.authorization_endpoint.is_some(),
                g.token_endpoint.is_some(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("48", Some(1), true, true),
            ("48", Some(2), false, false),
            ("49", Some(2), true, true)
        ]
    );
    assert_eq!(umc.gegevensdienst("48").count(), 2);
}

#[test]
fn reads_prefixes_newer_releases_schema_locations_and_a_bom() {
    let prefixed = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- comment -->\n<w:Whitelist xmlns:w=\"xmlns://afsprakenstelsel.medmij.nl/whitelist/release3/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"x.xsd\"><w:Tijdstempel> 2026-01-15T10:30:00.25+01:00\n</w:Tijdstempel><w:Volgnummer>+007</w:Volgnummer><w:MedMijNodes><w:MedMijNode><w:Hostname>a-.b1.nl</w:Hostname></w:MedMijNode></w:MedMijNodes></w:Whitelist>\n<!-- after -->\n";
    let list = parse_whitelist(prefixed.as_bytes()).unwrap();
    assert_eq!(list.volgnummer, 7);
    assert_eq!(list.tijdstempel, at("2026-01-15T09:30:00.25Z"));
    assert!(list.contains("a-.b1.nl"));

    // Empty lists are valid (minOccurs 0); a zone-less Tijdstempel is read as UTC.
    let empty = "<Whitelist xmlns=\"xmlns://afsprakenstelsel.medmij.nl/whitelist/release2/\"><Tijdstempel>2026-01-15T09:30:00.5</Tijdstempel><Volgnummer>1</Volgnummer><MedMijNodes/></Whitelist>";
    let list = parse_whitelist(empty.as_bytes()).unwrap();
    assert!(list.hostnames.is_empty());
    assert_eq!(list.tijdstempel, at("2026-01-15T09:30:00.5Z"));

    // Entities, character references and CDATA in text.
    let names = "<Gegevensdienstnamenlijst xmlns=\"xmlns://afsprakenstelsel.medmij.nl/gegevensdienstnamenlijst/release1/\"><Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel><Volgnummer>1</Volgnummer><Gegevensdiensten><Gegevensdienst><GegevensdienstId>4&#56;</GegevensdienstId><Weergavenaam>Lab &amp; <![CDATA[<röntgen>]]></Weergavenaam></Gegevensdienst></Gegevensdiensten></Gegevensdienstnamenlijst>";
    let list = parse_gegevensdienst_names(names.as_bytes()).unwrap();
    assert_eq!(list.weergavenaam("48"), Some("Lab & <röntgen>"));

    // An OAuth client that may ask for no gegevensdienst at all.
    let none = ocl("<OAuthclient><Hostname>pgo.example.nl</Hostname><OAuthclientOrganisatienaam>PGO</OAuthclientOrganisatienaam><Gegevensdiensten/></OAuthclient>\n");
    let list = parse_oauth_client_list(none.as_bytes()).unwrap();
    assert_eq!(list.clients[0].gegevensdiensten, Some(vec![]));
    assert!(!list.clients[0].allows("48"));
}

// --- refusals ------------------------------------------------------------------------------------

#[test]
fn refuses_oversized_and_non_utf8_input() {
    let big = vec![b' '; MAX_LIST_BYTES + 1];
    assert_eq!(
        parse_whitelist(&big).unwrap_err(),
        ListError::TooLarge {
            size: MAX_LIST_BYTES + 1,
            limit: MAX_LIST_BYTES
        }
    );
    assert_eq!(
        ListError::TooLarge {
            size: 33_554_433,
            limit: 33_554_432
        }
        .to_string(),
        "the list is 33554433 bytes, more than the limit of 33554432"
    );
    let latin1 = ocl(&client("pgo.example.nl", "PGO M\u{fc}ller")).replace('\u{fc}', "\u{0}");
    let mut bytes = latin1.into_bytes();
    let nul = bytes.iter().position(|&b| b == 0).unwrap();
    bytes[nul] = 0xfc;
    assert_eq!(
        parse_oauth_client_list(&bytes).unwrap_err().to_string(),
        "the list is not UTF-8"
    );
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("<Whitelist/>".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(parse_whitelist(&utf16).unwrap_err(), ListError::NotUtf8);
    assert_eq!(
        ocl_error(&format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n{}",
            ocl("")
        )),
        "line 1: only UTF-8 documents are accepted"
    );
}

#[test]
fn refuses_dtds_entities_and_processing_instructions() {
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE OAuthclientlist [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n{}",
        ocl(&client("pgo.example.nl", "&x;"))
    );
    assert_eq!(
        ocl_error(&xxe),
        "line 2: document type declarations (DTD, entities) are not accepted"
    );
    let laughs =
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]><Whitelist/>";
    assert_eq!(
        parse_whitelist(laughs.as_bytes()).unwrap_err().to_string(),
        "line 1: document type declarations (DTD, entities) are not accepted"
    );
    assert_eq!(
        ocl_error(&ocl(&client("pgo.example.nl", "PGO &x;"))),
        "line 5: an entity reference other than the five predefined ones"
    );
    assert_eq!(
        ocl_error(&format!("<?xml-stylesheet href=\"x.xsl\"?>\n{}", ocl(""))),
        "line 1: processing instructions are not accepted"
    );
    assert_eq!(
        ocl_error(&format!("{}<?pi x?>\n", ocl(""))),
        "line 7: processing instructions are not accepted"
    );
    assert_eq!(
        ocl_error(&format!(
            "<?xml version=\"1.0\" <!DOCTYPE r [<!ENTITY x \"y\">]> ?>\n{}",
            ocl("")
        )),
        "line 1: malformed XML declaration"
    );
    assert_eq!(
        ocl_error(&format!("\n<?xml version=\"1.0\"?>{}", ocl(""))),
        "line 2: the XML declaration is not at the start"
    );
}

#[test]
fn refuses_characters_xml_does_not_allow() {
    assert_eq!(
        ocl_error(&ocl(&client("pgo.example.nl", "PGO\u{1}"))),
        "line 5: a character that XML does not allow"
    );
    assert_eq!(
        ocl_error(&ocl(&client("pgo.example.nl", "PGO&#1;"))),
        "line 5: <OAuthclientOrganisatienaam> has a character reference to a character XML does not allow"
    );
}

#[test]
fn refuses_malformed_and_incomplete_documents() {
    assert_eq!(
        parse_whitelist(b"").unwrap_err().to_string(),
        "line 1: the document has no complete <Whitelist> element"
    );
    let cut = ocl(&client("pgo.example.nl", "PGO"));
    let cut = &cut[..cut.len() - "</OAuthclientlist>\n".len()];
    assert_eq!(
        ocl_error(cut),
        "line 7: the document has no complete <OAuthclientlist> element"
    );
    assert_eq!(
        ocl_error(&ocl("<OAuthclient><Hostname>pgo.example.nl</Host></OAuthclient>\n")),
        "line 5: not well-formed XML (ill-formed document: expected `</Hostname>`, but `</Host>` was found)"
    );
    assert_eq!(
        ocl_error(&format!("{}{}", ocl(""), ocl(""))),
        "line 7: content after the root element"
    );
    assert_eq!(
        ocl_error(&format!("{}after\n", ocl(""))),
        "line 7: text outside the root element"
    );
    assert_eq!(
        ocl_error(&format!("before\n{}", ocl(""))),
        "line 1: text outside the root element"
    );
}

#[test]
fn refuses_wrong_roots_and_namespaces() {
    let whitelist = include_str!("../../../medmij/MedMij_Whitelist.xml");
    assert_eq!(
        ocl_error(whitelist),
        "line 3: the root element must be <OAuthclientlist>, not <Whitelist>"
    );
    assert_eq!(
        ocl_error(&ocl("").replace(&format!(" xmlns=\"{OCL_NS}\""), "")),
        "line 1: <OAuthclientlist> is in no namespace, expected the namespace xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release<N>/"
    );
    assert_eq!(
        ocl_error(&ocl("").replace(OCL_NS, "xmlns://afsprakenstelsel.medmij.nl/whitelist/release2/")),
        "line 1: <OAuthclientlist> is in the namespace \"xmlns://afsprakenstelsel.medmij.nl/whitelist/release2/\", expected the namespace xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release<N>/"
    );
    assert_eq!(
        ocl_error(&ocl("").replace("release2/", "releaseX/")),
        "line 1: <OAuthclientlist> is in the namespace \"xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/releaseX/\", expected the namespace xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release<N>/"
    );
    assert_eq!(
        ocl_error(&ocl("<OAuthclient xmlns=\"urn:other\"/>\n")),
        format!("line 5: <OAuthclient> is in the namespace \"urn:other\", expected the namespace {OCL_NS}")
    );
    assert_eq!(
        ocl_error(&ocl("<OAuthclient xmlns=\"xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release3/\"/>\n")),
        format!("line 5: <OAuthclient> is in the namespace \"xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release3/\", expected the namespace {OCL_NS}")
    );
    assert_eq!(
        ocl_error(&ocl("<x:OAuthclient/>\n")),
        "line 5: <OAuthclient> is in the undeclared prefix \"x\", expected the namespace xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release<N>/"
    );
}

#[test]
fn refuses_attributes() {
    assert_eq!(
        ocl_error(&ocl("").replacen("<OAuthclientlist ", "<OAuthclientlist versie=\"2\" ", 1)),
        "line 1: the attribute \"versie\" is not allowed on <OAuthclientlist>"
    );
    assert_eq!(
        ocl_error(&ocl("").replacen(
            "<OAuthclientlist ",
            "<OAuthclientlist xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"x\" ",
            1
        )),
        "line 1: the attribute \"xsi:type\" is not allowed on <OAuthclientlist>"
    );
    assert_eq!(
        ocl_error(&ocl(
            "<OAuthclient xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"a b\"/>\n"
        )),
        "line 5: the attribute \"xsi:schemaLocation\" is not allowed on <OAuthclient>"
    );
    assert_eq!(
        ocl_error(&ocl(
            "<OAuthclient><Hostname id=\"1\">pgo.example.nl</Hostname></OAuthclient>\n"
        )),
        "line 5: the attribute \"id\" is not allowed on <Hostname>"
    );
}

#[test]
fn refuses_elements_out_of_shape() {
    // Unknown.
    assert_eq!(
        ocl_error(&ocl(
            "<OAuthclient><Hostname>pgo.example.nl</Hostname><Naam>PGO</Naam></OAuthclient>\n"
        )),
        "line 5: <Naam> is not allowed in <OAuthclient>"
    );
    assert_eq!(
        ocl_error(&ocl("<Whitelist/>\n")),
        "line 5: <Whitelist> is not allowed in <OAuthclients>"
    );
    // Inside a simple type.
    assert_eq!(
        ocl_error(&ocl(
            "<OAuthclient><Hostname><b>pgo.example.nl</b></Hostname></OAuthclient>\n"
        )),
        "line 5: <b> is not allowed in <Hostname>"
    );
    // Repeated.
    assert_eq!(
        ocl_error(&ocl("").replace(
            "<Volgnummer>17</Volgnummer>\n",
            "<Volgnummer>17</Volgnummer>\n<Volgnummer>18</Volgnummer>\n"
        )),
        "line 4: <Volgnummer> appears more than once in <OAuthclientlist>"
    );
    assert_eq!(
        ocl_error(&ocl("<OAuthclient><Hostname>a.example.nl</Hostname><Hostname>b.example.nl</Hostname></OAuthclient>\n")),
        "line 5: <Hostname> appears more than once in <OAuthclient>"
    );
    assert_eq!(
        ocl_error(&ocl(&client("a.example.nl", "PGO").replace(
            "</OAuthclientOrganisatienaam>",
            "</OAuthclientOrganisatienaam><Hostname>b.example.nl</Hostname>"
        ))),
        "line 5: <Hostname> appears more than once in <OAuthclient>"
    );
    assert_eq!(
        ocl_error(&ocl("").replace(
            "</OAuthclients>\n",
            "</OAuthclients>\n<OAuthclients>\n</OAuthclients>\n"
        )),
        "line 6: <OAuthclients> appears more than once in <OAuthclientlist>"
    );
    // Out of order.
    assert_eq!(
        ocl_error(&ocl("").replace(
            "<Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel>\n<Volgnummer>17</Volgnummer>",
            "<Volgnummer>17</Volgnummer>\n<Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel>"
        )),
        "line 2: <OAuthclientlist> lacks <Tijdstempel>"
    );
    let zorgaanbieder = format!(
        "<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam><Gegevensdiensten>{}</Gegevensdiensten><Aanbiedertype>ZA</Aanbiedertype></Zorgaanbieder>\n",
        zal_dienst("48", true)
    );
    assert_eq!(
        zal_error(&zal(&zorgaanbieder)),
        "line 5: <Aanbiedertype> must come before <Gegevensdiensten> in <Zorgaanbieder>"
    );
    // Missing.
    assert_eq!(
        ocl_error(&ocl(
            "<OAuthclient><Hostname>pgo.example.nl</Hostname></OAuthclient>\n"
        )),
        "line 5: <OAuthclient> lacks <OAuthclientOrganisatienaam>"
    );
    assert_eq!(
        ocl_error(&ocl("<OAuthclient><OAuthclientOrganisatienaam>PGO</OAuthclientOrganisatienaam></OAuthclient>\n")),
        "line 5: <OAuthclient> lacks <Hostname>"
    );
    assert_eq!(
        ocl_error(&ocl("").replace("<OAuthclients>\n</OAuthclients>\n", "")),
        "line 4: <OAuthclientlist> lacks <OAuthclients>"
    );
    assert_eq!(
        zal_error(&zal("<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam></Zorgaanbieder>\n")),
        "line 5: <Zorgaanbieder> lacks <Gegevensdiensten>"
    );
    assert_eq!(
        zal_error(&zal(&format!(
            "<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam>\n<Gegevensdiensten>{}</Gegevensdiensten>\n</Zorgaanbieder>\n",
            zal_dienst("48", false)
        ))),
        "line 6: <Gegevensdienst> lacks <AuthorizationEndpoint>"
    );
    assert_eq!(
        zal_error(&zal(&format!(
            "<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam>\n<Gegevensdiensten>{}</Gegevensdiensten>\n</Zorgaanbieder>\n",
            zal_dienst("48", true).replace(
                "<TokenEndpoint><TokenEndpointuri>https://za.example.nl/token</TokenEndpointuri></TokenEndpoint>",
                ""
            )
        ))),
        "line 6: <Gegevensdienst> lacks <TokenEndpoint>"
    );
    assert_eq!(
        zal_error(&zal("<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam><Gegevensdiensten></Gegevensdiensten></Zorgaanbieder>\n")),
        "line 5: <Gegevensdiensten> lacks <Gegevensdienst>"
    );
    // Release 2 and the newer nesting mixed in one zorgaanbieder.
    assert_eq!(
        zal_error(&zal(&format!(
            "<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam><Gegevensdiensten>{}</Gegevensdiensten>\n<Interfaceversies><Interfaceversie><InterfaceversieId>1</InterfaceversieId><Gegevensdiensten>{}</Gegevensdiensten></Interfaceversie></Interfaceversies></Zorgaanbieder>\n",
            zal_dienst("48", true),
            zal_dienst("49", true)
        ))),
        "line 6: <Interfaceversies> is not allowed in <Zorgaanbieder>"
    );
    // Text between elements.
    assert_eq!(
        ocl_error(&ocl("text\n")),
        "line 5: <OAuthclients> holds elements only, not text"
    );
    assert_eq!(
        ocl_error(&ocl("<![CDATA[x]]>\n")),
        "line 5: <OAuthclients> holds elements only, not text"
    );
}

#[test]
fn refuses_values_outside_their_types() {
    for (host, line) in [
        ("PGO.example.nl", 5),
        ("localhost", 5),
        ("pgo.example.n", 5),
        ("pgo.example.nl-", 5),
        ("-pgo.example.nl", 5),
        ("pgo..example.nl", 5),
        ("pgo.example.nl.", 5),
        (" pgo.example.nl", 5),
        ("pgo.example.nl:443", 5),
    ] {
        assert_eq!(
            ocl_error(&ocl(&client(host, "PGO"))),
            format!("line {line}: <Hostname> {host:?} is not a lower-case host name"),
        );
    }
    assert_eq!(
        ocl_error(&ocl(&client("pgo.example.nl", "PG"))),
        "line 5: <OAuthclientOrganisatienaam> \"PG\" has 2 characters, not 3 to 50"
    );
    let long = "x".repeat(51);
    assert_eq!(
        ocl_error(&ocl(&client("pgo.example.nl", &long))),
        format!("line 5: <OAuthclientOrganisatienaam> {long:?} has 51 characters, not 3 to 50")
    );
    let volgnummer =
        |v: &str| ocl_error(&ocl("").replace("<Volgnummer>17<", &format!("<Volgnummer>{v}<")));
    assert_eq!(volgnummer("0"), "line 3: <Volgnummer> \"0\" is less than 1");
    assert_eq!(
        volgnummer("-1"),
        "line 3: <Volgnummer> \"-1\" is not a whole number"
    );
    assert_eq!(
        volgnummer("1.0"),
        "line 3: <Volgnummer> \"1.0\" is not a whole number"
    );
    assert_eq!(
        volgnummer(""),
        "line 3: <Volgnummer> \"\" is not a whole number"
    );
    assert_eq!(
        volgnummer("18446744073709551616"),
        "line 3: <Volgnummer> \"18446744073709551616\" is too large"
    );
    let tijdstempel = |v: &str| {
        ocl_error(&ocl("").replace(
            "<Tijdstempel>2026-01-15T09:30:00Z<",
            &format!("<Tijdstempel>{v}<"),
        ))
    };
    for bad in [
        "2026-01-15T09:30:00",
        "2026-01-15",
        "15-01-2026T09:30:00Z",
        "2026-02-30T09:30:00Z",
        "2026-01-15 09:30:00Z",
        "2026-01-15t09:30:00Z",
        "2026-01-15T09:30:00z",
        "2026-01-15T24:00:00Z",
        "2026-01-15T09:30:00+0100",
    ] {
        assert_eq!(
            tijdstempel(bad),
            format!("line 2: <Tijdstempel> {bad:?} is not a date and time with a time zone")
        );
    }
    let gd = |id: &str| {
        ocl_error(&ocl(&format!("<OAuthclient><Hostname>pgo.example.nl</Hostname><OAuthclientOrganisatienaam>PGO</OAuthclientOrganisatienaam><Gegevensdiensten><Gegevensdienst><GegevensdienstId>{id}</GegevensdienstId></Gegevensdienst></Gegevensdiensten></OAuthclient>\n")))
    };
    assert_eq!(
        gd(""),
        "line 5: <GegevensdienstId> \"\" has 0 characters, not 1 to 30"
    );
    for naam in [
        "um@medmij",
        "UMCHarderwijk@medmij",
        "umc-harderwijk@medmij",
        "umcharderwijk",
        "umcharderwijk@medmij.nl",
    ] {
        assert_eq!(
            zal_error(&zal(&format!("<Zorgaanbieder><Zorgaanbiedernaam>{naam}</Zorgaanbiedernaam></Zorgaanbieder>\n"))),
            format!("line 5: <Zorgaanbiedernaam> {naam:?} is not lower-case letters and @medmij (10 to 57 characters)")
        );
    }
    let endpoint = |element: &str, uri: &str| {
        let dienst = zal_dienst("48", true).replace(
            &format!(
                "<{element}>https://za.example.nl/{}</{element}>",
                match element {
                    "AuthorizationEndpointuri" => "authorize",
                    "TokenEndpointuri" => "token",
                    _ => "fhir",
                }
            ),
            &format!("<{element}>{uri}</{element}>"),
        );
        zal_error(&zal(&format!("<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam><Gegevensdiensten>{dienst}</Gegevensdiensten></Zorgaanbieder>\n")))
    };
    for (element, uri, kind) in [
        (
            "AuthorizationEndpointuri",
            "http://za.example.nl/authorize",
            "front-channel",
        ),
        (
            "AuthorizationEndpointuri",
            "https://za.example.nl:8443/authorize",
            "front-channel",
        ),
        (
            "AuthorizationEndpointuri",
            "https://za.example.nl/authorize?x=1",
            "front-channel",
        ),
        (
            "AuthorizationEndpointuri",
            "https://za.example.nl/authorize/",
            "front-channel",
        ),
        (
            "AuthorizationEndpointuri",
            "https://ZA.example.nl/authorize",
            "front-channel",
        ),
        (
            "TokenEndpointuri",
            "https://za.example.nl:123456/token",
            "back-channel",
        ),
        (
            "TokenEndpointuri",
            "https://za.example.nl:/token",
            "back-channel",
        ),
        (
            "TokenEndpointuri",
            "https://za.example.nl/token#x",
            "back-channel",
        ),
        (
            "ResourceEndpointuri",
            "https://za.example.nl//fhir",
            "back-channel",
        ),
        ("ResourceEndpointuri", "https://za.e/fhir", "back-channel"),
    ] {
        assert_eq!(
            endpoint(element, uri),
            format!("line 5: <{element}> {uri:?} is not an https URI of the {kind} form"),
        );
    }
    // The front channel's last host label may be one character (its XSD pattern), and an URI
    // may be the bare host; the back channel may name a port.
    assert!(parse_zorgaanbiederslijst(
        zal(&format!(
            "<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam><Gegevensdiensten>{}</Gegevensdiensten></Zorgaanbieder>\n",
            zal_dienst("48", true)
                .replace("https://za.example.nl/authorize", "https://za.example.n")
                .replace("https://za.example.nl/token", "https://za.example.nl:8443")
        ))
        .as_bytes()
    )
    .is_ok());
    assert_eq!(
        zal_error(&zal(&format!("<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam><Interfaceversies><Interfaceversie><InterfaceversieId>v1</InterfaceversieId><Gegevensdiensten>{}</Gegevensdiensten></Interfaceversie></Interfaceversies></Zorgaanbieder>\n", zal_dienst("48", true)))),
        "line 5: <InterfaceversieId> \"v1\" is not a whole number"
    );
}

#[test]
fn refuses_values_the_schema_wants_unique() {
    assert_eq!(
        ocl_error(&ocl(&format!(
            "{}{}",
            client("pgo.example.nl", "PGO"),
            client("pgo.example.nl", "Other PGO")
        ))),
        "line 6: <Hostname> \"pgo.example.nl\" appears twice in <OAuthclients>"
    );
    assert_eq!(
        ocl_error(&ocl("<OAuthclient><Hostname>pgo.example.nl</Hostname><OAuthclientOrganisatienaam>PGO</OAuthclientOrganisatienaam><Gegevensdiensten><Gegevensdienst><GegevensdienstId>48</GegevensdienstId></Gegevensdienst>\n<Gegevensdienst><GegevensdienstId>48</GegevensdienstId></Gegevensdienst></Gegevensdiensten></OAuthclient>\n")),
        "line 6: <GegevensdienstId> \"48\" appears twice in <OAuthclient>"
    );
    let whitelist = "<Whitelist xmlns=\"xmlns://afsprakenstelsel.medmij.nl/whitelist/release2/\"><Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel><Volgnummer>1</Volgnummer><MedMijNodes>\n<MedMijNode><Hostname>a.example.nl</Hostname></MedMijNode>\n<MedMijNode><Hostname>a.example.nl</Hostname></MedMijNode>\n</MedMijNodes></Whitelist>";
    assert_eq!(
        parse_whitelist(whitelist.as_bytes())
            .unwrap_err()
            .to_string(),
        "line 3: <Hostname> \"a.example.nl\" appears twice in <MedMijNodes>"
    );
    let names = "<Gegevensdienstnamenlijst xmlns=\"xmlns://afsprakenstelsel.medmij.nl/gegevensdienstnamenlijst/release1/\"><Tijdstempel>2026-01-15T09:30:00Z</Tijdstempel><Volgnummer>1</Volgnummer><Gegevensdiensten>\n<Gegevensdienst><GegevensdienstId>48</GegevensdienstId><Weergavenaam>Documenten</Weergavenaam></Gegevensdienst>\n<Gegevensdienst><GegevensdienstId>48</GegevensdienstId><Weergavenaam>Nog eens</Weergavenaam></Gegevensdienst>\n</Gegevensdiensten></Gegevensdienstnamenlijst>";
    assert_eq!(
        parse_gegevensdienst_names(names.as_bytes())
            .unwrap_err()
            .to_string(),
        "line 3: <GegevensdienstId> \"48\" appears twice in <Gegevensdiensten>"
    );
    let aanbieder = |naam: &str, diensten: &str| {
        format!("<Zorgaanbieder><Zorgaanbiedernaam>{naam}</Zorgaanbiedernaam><Gegevensdiensten>{diensten}</Gegevensdiensten></Zorgaanbieder>\n")
    };
    assert_eq!(
        zal_error(&zal(&format!(
            "{}{}",
            aanbieder("umcharderwijk@medmij", &zal_dienst("48", true)),
            aanbieder("umcharderwijk@medmij", &zal_dienst("48", true))
        ))),
        "line 6: <Zorgaanbiedernaam> \"umcharderwijk@medmij\" appears twice in <Zorgaanbieders>"
    );
    assert_eq!(
        zal_error(&zal(&aanbieder(
            "umcharderwijk@medmij",
            &format!("{}{}", zal_dienst("48", true), zal_dienst("48", true))
        ))),
        "line 5: <GegevensdienstId> \"48\" appears twice in <Zorgaanbieder>"
    );
    // Across zorgaanbieders the same gegevensdienst is fine.
    assert!(parse_zorgaanbiederslijst(
        zal(&format!(
            "{}{}",
            aanbieder("umcharderwijk@medmij", &zal_dienst("48", true)),
            aanbieder("anderezorgaanbieder@medmij", &zal_dienst("48", true))
        ))
        .as_bytes()
    )
    .is_ok());
    let versies = |ids: [&str; 2], diensten: [&str; 2]| {
        zal_error(&zal(&format!("<Zorgaanbieder><Zorgaanbiedernaam>umcharderwijk@medmij</Zorgaanbiedernaam><Interfaceversies>\n<Interfaceversie><InterfaceversieId>{}</InterfaceversieId><Gegevensdiensten>{}</Gegevensdiensten></Interfaceversie>\n<Interfaceversie><InterfaceversieId>{}</InterfaceversieId><Gegevensdiensten>{}</Gegevensdiensten></Interfaceversie>\n</Interfaceversies></Zorgaanbieder>\n", ids[0], diensten[0], ids[1], diensten[1])))
    };
    let d48 = zal_dienst("48", true);
    assert_eq!(
        versies(["1", "1"], [&d48, &d48]),
        "line 7: <InterfaceversieId> \"1\" appears twice in <Interfaceversies>"
    );
    assert_eq!(
        versies(["1", "2"], [&format!("{d48}{d48}"), &d48]),
        "line 6: <GegevensdienstId> \"48\" appears twice in <Interfaceversie>"
    );
    let two_roles = zal_dienst("48", true).replace(
        "</Systeemrol></Systeemrollen>",
        "</Systeemrol><Systeemrol><Systeemrolcode>RS</Systeemrolcode><ResourceEndpoint><ResourceEndpointuri>https://za.example.nl/fhir2</ResourceEndpointuri></ResourceEndpoint></Systeemrol></Systeemrollen>",
    );
    assert_eq!(
        zal_error(&zal(&aanbieder("umcharderwijk@medmij", &two_roles))),
        "line 5: <Systeemrolcode> \"RS\" appears twice in <Systeemrollen>"
    );
}
