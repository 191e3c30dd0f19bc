//! The web dashboard's files, compiled into the binary (no CDN, nothing fetched at run time), and
//! the standalone page `tandem report --format html` writes: the same page with its script, styles
//! and data inline.

use crate::{Dashboard, Result};

/// The dashboard page.
pub const INDEX_HTML: &str = include_str!("../ui/index.html");
/// The sign-in page; `<!--tandem:error-->` marks where an error message goes.
pub const LOGIN_HTML: &str = include_str!("../ui/login.html");
/// The dashboard's script.
pub const APP_JS: &str = include_str!("../ui/app.js");
/// The dashboard's styles.
pub const APP_CSS: &str = include_str!("../ui/app.css");

const DATA_MARKER: &str = "<!--tandem:data-->";
const ERROR_MARKER: &str = "<!--tandem:error-->";

/// The sign-in page showing `error` (escaped), if any.
pub fn login_page(error: Option<&str>) -> String {
    let message = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    LOGIN_HTML.replace(ERROR_MARKER, &message)
}

/// The dashboard page as the server sends it (the data comes from `/ui/api/dashboard`).
pub fn served_page() -> String {
    INDEX_HTML.replace(DATA_MARKER, "")
}

/// One self-contained HTML file showing `dashboard`: script, styles and data inline.
pub fn standalone(dashboard: &Dashboard) -> Result<String> {
    // `</` cannot appear inside a script element; JSON allows `<\/` for it.
    let data = serde_json::to_string(dashboard)?.replace("</", "<\\/");
    let script = APP_JS.replace("</script", "<\\/script");
    Ok(INDEX_HTML
        .replace(
            "<link rel=\"stylesheet\" href=\"/ui/app.css\">",
            &format!("<style>\n{APP_CSS}\n</style>"),
        )
        .replace("<script src=\"/ui/app.js\" defer></script>", "")
        .replace(
            DATA_MARKER,
            &format!("<script type=\"application/json\" id=\"tandem-data\">{data}</script>"),
        )
        // Inline, the script runs where it stands: last, once the page and the data are parsed.
        .replace(
            "</body>",
            &format!("<script>\n{script}\n</script>\n</body>"),
        ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
