//! Temporary: validate a token from the real oidc-provider (removed after the check).

#[tokio::test]
async fn real_provider() {
    let Ok(issuer) = std::env::var("REAL_OIDC_ISSUER") else {
        return;
    };
    let token = std::env::var("REAL_OIDC_TOKEN").unwrap();
    let mut config = tandem_auth::OidcConfig::new(issuer, "urn:tandem");
    config.groups_claim = Some("groups".to_owned());
    config.project_claim = Some("project".to_owned());
    let v = tandem_auth::OidcValidator::new(config).unwrap();
    let p = v.validate(&token).await;
    eprintln!("{p:?}");
    assert!(p.is_ok());
    let other = std::env::var("REAL_OIDC_OTHER").unwrap();
    eprintln!("{:?}", v.validate(&other).await);
}
