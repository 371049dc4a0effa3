//! The Android manifest against the Java code that relies on it (no Android SDK here, so these
//! are the checks the build would otherwise make late, or not at all):
//! - it parses; every permission the code needs is declared, and none it does not need;
//! - every component the code has or names is declared, and every declared one exists;
//! - the Home activity, lock task, the microphone foreground service, the device-admin
//!   receiver and the network security config say what the kiosk needs;
//! - the predictive-back callback is enabled; as device owner the app grants itself every
//!   runtime permission it declares, and sets its device-owner policies once per process;
//! - every resource the manifest and the code name exists, in Russian and in English;
//! - minSdk 26 and a current targetSdk, in the Gradle file; the build tools and the NDK are
//!   pinned (and are the ones the docs install); the verifier's Android component resolves,
//!   with the Kotlin runtime it needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node};

const ANDROID_NS: &str = "http://schemas.android.com/apk/res/android";
/// The targetSdk that Google Play requires of new apps and updates now (Android 15).
const CURRENT_TARGET_SDK: u32 = 35;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn android_manifest() -> String {
    read(&root().join("android-manifest/AndroidManifest.xml"))
}

fn gradle() -> String {
    read(&root().join("android-manifest/build.gradle"))
}

/// The app's Java sources, by class name.
fn java_sources() -> BTreeMap<String, String> {
    let dir = root().join("kiosk-android/java/ru/gov/rating/kiosk");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("java sources") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "java") {
            let class = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("name")
                .to_string();
            sources.insert(class, read(&path));
        }
    }
    assert!(sources.contains_key("KioskActivity"), "{sources:?}");
    sources
}

/// Java source without comments and string literals' contents, so that a word in a comment
/// is not taken for a use.
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            '"' => {
                // Keep the literal (permission names may be spelled as strings), skip escapes.
                out.push('"');
                while let Some(c) = chars.next() {
                    out.push(c);
                    if c == '\\' {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    } else if c == '"' {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Identifiers that follow `prefix` in `code`, e.g. `R.string.` → the string names.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    code.match_indices(prefix)
        .map(|(at, _)| {
            code[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The permissions the Java code needs, derived from the APIs it uses.
fn permissions_needed(code: &str) -> BTreeSet<String> {
    let mut needed = BTreeSet::new();
    let mut need = |p: &str| {
        needed.insert(format!("android.permission.{p}"));
    };
    // Runtime permissions it checks or asks for: Manifest.permission.X.
    for name in names_after(code, "Manifest.permission.") {
        need(&name);
    }
    // Permissions spelled out as strings.
    for name in names_after(code, "\"android.permission.") {
        need(&name);
    }
    // Any socket needs INTERNET: the WebView loads the kiosk page from 127.0.0.1, and the
    // native core (started through KioskNative.start with the server's address) reaches
    // the office server.
    if code.contains(".loadUrl(") || code.contains("KioskNative.start(") {
        need("INTERNET");
    }
    // A foreground service needs FOREGROUND_SERVICE, and from Android 14 one permission
    // per type it runs as.
    if code.contains("startForeground(") || code.contains("startForegroundService(") {
        need("FOREGROUND_SERVICE");
    }
    for kind in names_after(code, "ServiceInfo.FOREGROUND_SERVICE_TYPE_") {
        need(&format!("FOREGROUND_SERVICE_{kind}"));
    }
    if code.contains(".newWakeLock(") {
        need("WAKE_LOCK");
    }
    if code.contains("ACTION_BOOT_COMPLETED") {
        need("RECEIVE_BOOT_COMPLETED");
    }
    // A notification — posted, or the one every foreground service shows — is shown on
    // Android 13+ only with POST_NOTIFICATIONS.
    if code.contains(".notify(") || code.contains("startForeground(") {
        need("POST_NOTIFICATIONS");
    }
    needed
}

fn android_attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute((ANDROID_NS, name))
}

fn elements<'a, 'input>(doc: &'a Document<'input>, tag: &str) -> Vec<Node<'a, 'input>> {
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == tag)
        .collect()
}

fn namespace() -> String {
    let gradle = gradle();
    let line = gradle
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("namespace "))
        .expect("namespace in build.gradle");
    line.trim_start_matches("namespace ")
        .trim_matches(|c| c == '\'' || c == '"' || c == ' ')
        .to_string()
}

fn gradle_number(key: &str) -> u32 {
    let gradle = gradle();
    gradle
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in build.gradle"))
}

/// `.KioskActivity` → `ru.gov.rating.kiosk.KioskActivity`.
fn full_name(name: &str, namespace: &str) -> String {
    if name.starts_with('.') {
        format!("{namespace}{name}")
    } else if name.contains('.') {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

#[test]
fn the_manifest_declares_exactly_the_permissions_the_code_needs() {
    let text = android_manifest();
    let doc = Document::parse(&text).expect("AndroidManifest.xml parses");
    let declared: BTreeSet<String> = elements(&doc, "uses-permission")
        .into_iter()
        .map(|n| {
            android_attr(n, "name")
                .expect("permission name")
                .to_string()
        })
        .collect();
    let code: String = java_sources()
        .values()
        .map(|s| code_only(s))
        .collect::<Vec<_>>()
        .join("\n");
    let needed = permissions_needed(&code);
    let missing: Vec<_> = needed.difference(&declared).collect();
    let unused: Vec<_> = declared.difference(&needed).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "needed by the code but not declared: {missing:?}; declared but not needed: {unused:?}"
    );
    // The ones the issue names, so that a change in the derivation cannot hide them.
    for p in [
        "RECORD_AUDIO",
        "INTERNET",
        "FOREGROUND_SERVICE",
        "FOREGROUND_SERVICE_MICROPHONE",
        "POST_NOTIFICATIONS",
    ] {
        assert!(declared.contains(&format!("android.permission.{p}")), "{p}");
    }
}

#[test]
fn every_component_of_the_code_is_declared_and_every_declared_one_exists() {
    let text = android_manifest();
    let doc = Document::parse(&text).expect("AndroidManifest.xml parses");
    let namespace = namespace();
    assert_eq!(namespace, "ru.gov.rating.kiosk");
    assert!(
        doc.root_element().attribute("package").is_none(),
        "the package comes from the Gradle namespace (AGP 8 refuses it in the manifest)"
    );
    let sources = java_sources();

    // Components in the code: classes that extend a component base class...
    let kinds = [
        ("activity", &["extends Activity"][..]),
        ("service", &["extends Service"][..]),
        (
            "receiver",
            &["extends BroadcastReceiver", "extends DeviceAdminReceiver"][..],
        ),
    ];
    let mut in_code: BTreeSet<(String, String)> = BTreeSet::new();
    for (class, source) in &sources {
        let code = code_only(source);
        for (kind, bases) in kinds {
            if bases
                .iter()
                .any(|b| code.contains(&format!("class {class} {b}")))
            {
                in_code.insert((kind.to_string(), format!("{namespace}.{class}")));
            }
        }
    }
    // ...and every class the code names as a component (Intents, ComponentNames).
    let mut named: BTreeSet<String> = BTreeSet::new();
    for source in sources.values() {
        let code = code_only(source);
        for call in ["new Intent(this, ", "new ComponentName(this, "] {
            for class in names_after(&code, call) {
                named.insert(format!("{namespace}.{class}"));
            }
        }
    }
    assert!(!named.is_empty(), "the code names no component?");

    let mut declared: BTreeSet<(String, String)> = BTreeSet::new();
    for kind in ["activity", "service", "receiver", "provider"] {
        for node in elements(&doc, kind) {
            let name = android_attr(node, "name").expect("component name");
            declared.insert((kind.to_string(), full_name(name, &namespace)));
            assert!(
                android_attr(node, "exported").is_some(),
                "{name}: android:exported must be explicit (required from Android 12)"
            );
        }
    }
    assert_eq!(
        in_code, declared,
        "components in the Java code vs. in the manifest"
    );
    let declared_names: BTreeSet<_> = declared.iter().map(|(_, n)| n.clone()).collect();
    for name in &named {
        assert!(
            declared_names.contains(name),
            "the code names {name}, the manifest lacks it"
        );
    }
}

#[test]
fn the_kiosk_activity_is_the_home_app_and_may_be_pinned() {
    let text = android_manifest();
    let doc = Document::parse(&text).expect("parses");
    let activities = elements(&doc, "activity");
    assert_eq!(activities.len(), 1, "one Activity");
    let activity = activities[0];
    assert_eq!(android_attr(activity, "exported"), Some("true"));
    assert_eq!(
        android_attr(activity, "lockTaskMode"),
        Some("if_whitelisted")
    );
    assert_eq!(android_attr(activity, "launchMode"), Some("singleTask"));
    let filter_values: BTreeSet<&str> = activity
        .descendants()
        .filter(|n| n.is_element() && matches!(n.tag_name().name(), "action" | "category"))
        .filter_map(|n| android_attr(n, "name"))
        .collect();
    for needed in [
        "android.intent.action.MAIN",
        "android.intent.category.HOME",
        "android.intent.category.DEFAULT",
    ] {
        assert!(
            filter_values.contains(needed),
            "{needed}: {filter_values:?}"
        );
    }
    // The Activity survives configuration changes (the WebView is not rebuilt mid-visit).
    let changes = android_attr(activity, "configChanges").unwrap_or_default();
    for change in ["orientation", "screenSize", "keyboardHidden"] {
        assert!(changes.split('|').any(|c| c == change), "{change}");
    }
    let code = code_only(&java_sources()["KioskActivity"]);
    for needed in [
        "FLAG_KEEP_SCREEN_ON",
        "startLockTask()",
        "setLockTaskPackages(",
        "isDeviceOwnerApp(",
        "onBackPressed()",
        "registerOnBackInvokedCallback(",
        "WindowInsets.Type.systemBars()",
        "requestPermissions(",
        "R.string.microphone_refused",
    ] {
        assert!(code.contains(needed), "KioskActivity lacks {needed}");
    }
}

#[test]
fn the_recording_service_runs_as_a_microphone_foreground_service() {
    let text = android_manifest();
    let doc = Document::parse(&text).expect("parses");
    let services = elements(&doc, "service");
    assert_eq!(services.len(), 1);
    let service = services[0];
    assert_eq!(android_attr(service, "exported"), Some("false"));
    let types: BTreeSet<&str> = android_attr(service, "foregroundServiceType")
        .expect("foregroundServiceType")
        .split('|')
        .collect();
    // The types the code starts it with are the ones it declares.
    let code = code_only(&java_sources()["RecordingService"]);
    let used: BTreeSet<String> = names_after(&code, "ServiceInfo.FOREGROUND_SERVICE_TYPE_")
        .into_iter()
        .map(|t| t.to_lowercase())
        .collect();
    assert_eq!(
        types.iter().map(|t| t.to_string()).collect::<BTreeSet<_>>(),
        used
    );
    assert_eq!(used, BTreeSet::from(["microphone".to_string()]));
    // Android 14/15: started only from the visible Activity.
    let activity = code_only(&java_sources()["KioskActivity"]);
    let starts: Vec<_> = java_sources()
        .iter()
        .filter(|(_, s)| code_only(s).contains("startForegroundService("))
        .map(|(c, _)| c.clone())
        .collect();
    assert_eq!(starts, ["KioskActivity"], "who starts the service");
    assert!(
        activity.contains("if (!visible)"),
        "started only while visible"
    );
}

#[test]
fn the_device_admin_receiver_is_bound_and_described() {
    let text = android_manifest();
    let doc = Document::parse(&text).expect("parses");
    let receivers = elements(&doc, "receiver");
    assert_eq!(receivers.len(), 1);
    let receiver = receivers[0];
    assert_eq!(
        android_attr(receiver, "permission"),
        Some("android.permission.BIND_DEVICE_ADMIN")
    );
    let meta = receiver
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == "meta-data")
        .expect("meta-data");
    assert_eq!(android_attr(meta, "name"), Some("android.app.device_admin"));
    let resource = android_attr(meta, "resource").expect("resource");
    let path = resource_path(resource);
    let xml = read(&path);
    let admin = Document::parse(&xml).expect("device admin XML parses");
    assert_eq!(admin.root_element().tag_name().name(), "device-admin");
    let actions: Vec<_> = receiver
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "action")
        .filter_map(|n| android_attr(n, "name"))
        .collect();
    assert_eq!(actions, ["android.app.action.DEVICE_ADMIN_ENABLED"]);
}

#[test]
fn cleartext_is_allowed_only_to_the_local_kiosk_page() {
    let text = android_manifest();
    let doc = Document::parse(&text).expect("parses");
    let application = elements(&doc, "application")[0];
    assert!(
        android_attr(application, "usesCleartextTraffic").is_none(),
        "the network security config decides cleartext"
    );
    let config = android_attr(application, "networkSecurityConfig").expect("config");
    let xml = read(&resource_path(config));
    let nsc = Document::parse(&xml).expect("network security config parses");
    let base = elements(&nsc, "base-config");
    assert_eq!(base.len(), 1);
    assert_eq!(
        base[0].attribute("cleartextTrafficPermitted"),
        Some("false")
    );
    let domains = elements(&nsc, "domain-config");
    assert_eq!(domains.len(), 1, "one exception");
    assert_eq!(
        domains[0].attribute("cleartextTrafficPermitted"),
        Some("true")
    );
    let names: Vec<_> = domains[0]
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "domain")
        .map(|n| {
            (
                n.text().unwrap_or_default().trim(),
                n.attribute("includeSubdomains"),
            )
        })
        .collect();
    assert_eq!(names, [("127.0.0.1", Some("false"))]);
    // And the WebView is kept on that page.
    let code = code_only(&java_sources()["KioskActivity"]);
    assert!(code.contains("\"http://127.0.0.1:\""));
}

/// `@xml/device_admin` → android-manifest/res/xml/device_admin.xml (or any extension).
fn resource_path(reference: &str) -> PathBuf {
    let (kind, name) = reference
        .strip_prefix('@')
        .and_then(|r| r.split_once('/'))
        .unwrap_or_else(|| panic!("not a resource reference: {reference}"));
    let dir = root().join("android-manifest/res").join(kind);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(name))
        .unwrap_or_else(|| panic!("{reference} does not exist under {}", dir.display()))
}

fn string_names(locale_dir: &str) -> BTreeSet<String> {
    let path = root()
        .join("android-manifest/res")
        .join(locale_dir)
        .join("strings.xml");
    let text = read(&path);
    let doc = Document::parse(&text).expect("strings.xml parses");
    let names: Vec<String> = elements(&doc, "string")
        .into_iter()
        .map(|n| n.attribute("name").expect("name").to_string())
        .collect();
    let unique: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(unique.len(), names.len(), "a string twice in {locale_dir}");
    unique
}

#[test]
fn every_resource_named_exists_in_russian_and_english() {
    let russian = string_names("values");
    let english = string_names("values-en");
    assert_eq!(russian, english, "values/ and values-en/ differ");

    let text = android_manifest();
    let doc = Document::parse(&text).expect("parses");
    let mut references: BTreeSet<String> = BTreeSet::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        for attr in node.attributes() {
            let value = attr.value();
            if value.starts_with('@') && !value.starts_with("@android:") {
                references.insert(value.to_string());
            }
        }
    }
    let code: String = java_sources()
        .values()
        .map(|s| code_only(s))
        .collect::<Vec<_>>()
        .join("\n");
    for kind in ["string", "drawable", "xml"] {
        for name in names_after(&code, &format!("R.{kind}.")) {
            references.insert(format!("@{kind}/{name}"));
        }
    }
    for reference in &references {
        if let Some(name) = reference.strip_prefix("@string/") {
            assert!(russian.contains(name), "{reference} is not in values/");
        } else {
            resource_path(reference);
        }
    }
    assert!(references.contains("@string/microphone_refused"));
    // Format arguments agree between the languages.
    let args = |dir: &str| {
        let text = read(
            &root()
                .join("android-manifest/res")
                .join(dir)
                .join("strings.xml"),
        );
        let doc = Document::parse(&text).expect("parses");
        elements(&doc, "string")
            .into_iter()
            .map(|n| {
                let body = n.text().unwrap_or_default();
                (
                    n.attribute("name").unwrap_or_default().to_string(),
                    names_after(body, "%").len(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(args("values"), args("values-en"));
}

#[test]
fn the_sdk_levels_are_minsdk_26_and_a_current_target() {
    assert_eq!(gradle_number("minSdk"), 26, "AAudio (cpal) needs 26");
    assert!(gradle_number("targetSdk") >= CURRENT_TARGET_SDK);
    assert!(gradle_number("compileSdk") >= gradle_number("targetSdk"));
    // The Java sources and the native library are where the Gradle file says.
    let gradle = gradle();
    assert!(gradle.contains("'../kiosk-android/java'"));
    assert!(gradle.contains("'build/jniLibs'"));
    assert!(gradle.contains("manifest.srcFile 'AndroidManifest.xml'"));
    // The library the Java class loads is the one this crate builds.
    let native = read(&root().join("kiosk-android/java/ru/gov/rating/kiosk/KioskNative.java"));
    assert!(native.contains("System.loadLibrary(\"kiosk_android\")"));
    let cargo = read(&root().join("kiosk-android/Cargo.toml"));
    assert!(cargo.contains("name = \"kiosk-android\"") && cargo.contains("\"cdylib\""));
}

/// The body of the Java method `name` (declared, not called), braces included.
fn method_body(code: &str, name: &str) -> String {
    for (at, _) in code.match_indices(&format!(" {name}(")) {
        let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
        let declaration = &code[line_start..at];
        let is_declaration = ["private ", "protected ", "public ", "static "]
            .iter()
            .any(|modifier| declaration.contains(modifier));
        if !is_declaration {
            continue;
        }
        let open = at + code[at..].find('{').expect("a body");
        let mut depth = 0usize;
        for (offset, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return code[open..=open + offset].to_string();
                    }
                }
                _ => {}
            }
        }
        panic!("the body of {name} does not close");
    }
    panic!("no method {name} is declared")
}

/// Runtime ("dangerous") permissions: a kiosk cannot rely on a person to grant them.
const RUNTIME_PERMISSIONS: [&str; 8] = [
    "RECORD_AUDIO",
    "POST_NOTIFICATIONS",
    "CAMERA",
    "ACCESS_FINE_LOCATION",
    "ACCESS_COARSE_LOCATION",
    "READ_EXTERNAL_STORAGE",
    "READ_PHONE_STATE",
    "BLUETOOTH_CONNECT",
];

#[test]
fn the_back_callback_the_activity_registers_is_enabled_in_the_manifest() {
    let code = code_only(&java_sources()["KioskActivity"]);
    assert!(code.contains("registerOnBackInvokedCallback("));
    let text = android_manifest();
    let doc = Document::parse(&text).expect("parses");
    let application = elements(&doc, "application")[0];
    // Android 13–15 ignore the callback unless the application opts in.
    assert_eq!(
        android_attr(application, "enableOnBackInvokedCallback"),
        Some("true")
    );
}

#[test]
fn as_device_owner_the_app_grants_itself_every_runtime_permission_it_declares() {
    let text = android_manifest();
    let doc = Document::parse(&text).expect("parses");
    let declared: BTreeSet<String> = elements(&doc, "uses-permission")
        .into_iter()
        .filter_map(|n| android_attr(n, "name"))
        .filter_map(|n| n.strip_prefix("android.permission."))
        .filter(|n| RUNTIME_PERMISSIONS.contains(n))
        .map(str::to_string)
        .collect();
    assert_eq!(
        declared,
        BTreeSet::from(["POST_NOTIFICATIONS".to_string(), "RECORD_AUDIO".to_string()])
    );
    let code = code_only(&java_sources()["KioskActivity"]);
    let policies = method_body(&code, "applyDeviceOwnerPolicies");
    let granted = names_after(
        &policies,
        "grantPermission(dpm, admin, Manifest.permission.",
    );
    assert_eq!(granted, declared, "granted in applyDeviceOwnerPolicies");
    let grant = method_body(&code, "grantPermission");
    assert!(
        grant.contains("setPermissionGrantState(")
            && grant.contains("PERMISSION_GRANT_STATE_GRANTED"),
        "{grant}"
    );
    // POST_NOTIFICATIONS exists from Android 13 (API 33).
    let notifications = policies
        .find("Manifest.permission.POST_NOTIFICATIONS")
        .expect("granted");
    assert!(
        policies[..notifications].contains("Build.VERSION.SDK_INT >= 33"),
        "{policies}"
    );
    // Before the first permission check, so that a device owner never shows the dialog.
    let create = method_body(&code, "onCreate");
    let applied = create
        .find("applyDeviceOwnerPolicies()")
        .expect("onCreate applies them");
    let checked = create
        .find("checkMicrophone(true)")
        .expect("onCreate checks");
    assert!(applied < checked, "{create}");
    // Released from kiosk mode: the user controls the permissions again.
    let release = method_body(&code, "applyKioskMode");
    for permission in &declared {
        assert!(
            release.contains(&format!("Manifest.permission.{permission}")),
            "{permission} not returned to the user on release"
        );
    }
    assert!(release.contains("PERMISSION_GRANT_STATE_DEFAULT"));
}

#[test]
fn device_owner_policies_are_set_once_per_process_not_at_every_resume() {
    let code = code_only(&java_sources()["KioskActivity"]);
    assert!(
        code.contains("private static boolean deviceOwnerPoliciesApplied;"),
        "a process-wide flag"
    );
    let policies = method_body(&code, "applyDeviceOwnerPolicies");
    assert!(
        policies
            .trim_start_matches('{')
            .trim_start()
            .starts_with("if (deviceOwnerPoliciesApplied) {"),
        "{policies}"
    );
    assert!(policies.contains("deviceOwnerPoliciesApplied = true;"));
    // The persistent policies are set nowhere else (the release path clears them).
    for call in [
        "setLockTaskPackages(admin, new String[] {getPackageName()})",
        "addPersistentPreferredActivity(",
        "PERMISSION_GRANT_STATE_GRANTED",
    ] {
        let uses: Vec<_> = code.match_indices(call).collect();
        assert_eq!(uses.len(), 1, "{call} appears {} times", uses.len());
        let inside = if call.starts_with("PERMISSION") {
            method_body(&code, "grantPermission")
        } else {
            policies.clone()
        };
        assert!(inside.contains(call), "{call} outside the once-only method");
    }
    // What runs at every resume only re-enters lock task if something ended it.
    let resume = method_body(&code, "onResume");
    assert!(resume.contains("applyKioskMode()"));
    let kiosk_mode = method_body(&code, "applyKioskMode");
    assert!(kiosk_mode.contains("applyDeviceOwnerPolicies()"));
    assert!(kiosk_mode.contains("if (!locked)"));
    assert!(kiosk_mode.contains("deviceOwnerPoliciesApplied = false;"));
}

#[test]
fn the_activity_logs_the_webview_version_at_start() {
    let code = code_only(&java_sources()["KioskActivity"]);
    assert!(method_body(&code, "onCreate").contains("logWebViewVersion();"));
    let log = method_body(&code, "logWebViewVersion");
    assert!(log.contains("WebView.getCurrentWebViewPackage()"), "{log}");
    assert!(
        log.contains(".versionName") && log.contains("Log.i("),
        "{log}"
    );
}

#[test]
fn the_gradle_build_pins_its_tools_and_resolves_the_verifier_with_the_kotlin_runtime() {
    let gradle = gradle();
    let pinned = |key: &str| -> String {
        gradle
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_string())
            .unwrap_or_else(|| panic!("{key} is not pinned in build.gradle"))
    };
    let build_tools = pinned("buildToolsVersion");
    let ndk = pinned("ndkVersion");
    assert_eq!(build_tools, "35.0.0");
    let ndk_major: u32 = ndk
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("ndkVersion");
    assert!(ndk_major >= 27, "16 KB pages need NDK r27+: {ndk}");
    // The versions docs/android.md tells to install are the pinned ones.
    let docs = read(&root().join("docs/android.md"));
    assert!(
        docs.contains(&format!("\"build-tools;{build_tools}\"")),
        "docs"
    );
    assert!(docs.contains(&format!("\"ndk;{ndk}\"")), "docs");
    // build-apk.sh reads them from build.gradle rather than naming its own.
    let script = read(&root().join("scripts/build-apk.sh"));
    assert!(script.contains("buildToolsVersion") && script.contains("ndkVersion"));
    assert!(
        !script.contains(&ndk),
        "build-apk.sh names an NDK version of its own"
    );

    let code: Vec<&str> = gradle
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .collect();
    let dependencies: Vec<&str> = code
        .iter()
        .copied()
        .filter(|l| l.starts_with("implementation "))
        .collect();
    // The rustls project publishes the component under the group org.rustls.
    assert!(
        dependencies
            .iter()
            .any(|d| d.contains("\"org.rustls:rustls-platform-verifier:${verifierVersion.get()}\"")),
        "{dependencies:?}"
    );
    // It is Kotlin, and its POM declares no dependency: the app brings the stdlib.
    assert!(
        dependencies
            .iter()
            .any(|d| d.contains("org.jetbrains.kotlin:kotlin-stdlib:")),
        "{dependencies:?}"
    );
    assert_eq!(dependencies.len(), 2, "{dependencies:?}");
    // The verifier's version comes from Cargo.lock's rustls-platform-verifier-android entry.
    let lock = read(&root().join("Cargo.lock"));
    assert!(lock.contains("name = \"rustls-platform-verifier-android\""));
    assert!(gradle.contains("'name = \"rustls-platform-verifier-android\"'"));
}
