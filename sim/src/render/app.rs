//! The Bevy side: one plugin that draws the current [`View`] (two vertex-coloured meshes and a
//! few labels), run either offscreen into an `Image` read back by screenshots, or in a window
//! that steps a [`LiveSource`] in real time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bevy::app::{AppExit, PluginGroup};
use bevy::asset::RenderAssetUsages;
use bevy::camera::RenderTarget;
use bevy::log::LogPlugin;
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use bevy::render::render_resource::TextureFormat;
use bevy::render::renderer::RenderDevice;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::render::RenderPlugin;
use bevy::sprite::Anchor;
use bevy::sprite_render::AlphaMode2d;
use bevy::text::{FontSize, TextBounds};
use bevy::window::{ExitCondition, WindowResolution};
use bevy::winit::WinitPlugin;

use super::geometry::{self, Area, MeshData, Regions, CAPTION_HEIGHT};
use super::view::{LabelSide, LiveSource, PanelLayout, RenderConfig, RenderError, View};

/// The settings the startup system reads, and the image to draw into (None: the window).
#[derive(Resource)]
struct ViewSetup {
    config: RenderConfig,
    regions: Regions,
    target: Option<Handle<Image>>,
}

/// What is drawn now; systems redraw when it changes.
#[derive(Resource, Default)]
struct CurrentView(View);

/// Handles of what `setup` spawned.
#[derive(Resource)]
struct Drawn {
    scene: Handle<Mesh>,
    panel: Handle<Mesh>,
    caption: Entity,
    overlays: Entity,
}

/// Draws [`CurrentView`] every time it changes.
struct ViewPlugin;

impl Plugin for ViewPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<CurrentView>()
            .insert_resource(ClearColor(Color::srgb_u8(20, 22, 28)))
            .add_systems(Startup, setup)
            // In Update, so that text layout (PostUpdate) sees this frame's caption.
            .add_systems(Update, redraw.run_if(resource_changed::<CurrentView>));
    }
}

fn to_mesh(data: MeshData) -> Mesh {
    let mut mesh = Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::default(),
    );
    mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, data.positions);
    mesh.insert_attribute(Mesh::ATTRIBUTE_COLOR, data.colors);
    mesh.insert_indices(Indices::U32(data.indices));
    mesh
}

fn text_font(size: f32) -> TextFont {
    TextFont {
        font_size: FontSize::Px(size),
        ..default()
    }
}

fn setup(
    mut commands: Commands,
    setup: Res<ViewSetup>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    let regions = setup.regions;
    match &setup.target {
        Some(image) => commands.spawn((Camera2d, RenderTarget::Image(image.clone().into()))),
        None => commands.spawn(Camera2d),
    };
    // Vertex colours carry all colour; blending keeps triangle order (the track under the car).
    let material = materials.add(ColorMaterial {
        color: Color::WHITE,
        alpha_mode: AlphaMode2d::Blend,
        ..default()
    });
    let empty = View::default();
    let scene = meshes.add(to_mesh(geometry::scene_mesh(&empty.frame, &regions)));
    commands.spawn((
        Mesh2d(scene.clone()),
        MeshMaterial2d(material.clone()),
        Transform::from_xyz(0.0, 0.0, 0.0),
    ));
    let panel_layout = setup.config.panel.clone().unwrap_or_default();
    let panel = meshes.add(to_mesh(geometry::panel_mesh(&panel_layout, None, &regions)));
    commands.spawn((
        Mesh2d(panel.clone()),
        MeshMaterial2d(material),
        Transform::from_xyz(0.0, 0.0, 0.1),
    ));
    let light = TextColor(Color::srgb_u8(230, 232, 236));
    let caption_at = regions.to_world(6.0, CAPTION_HEIGHT / 2.0);
    let caption = commands
        .spawn((
            Text2d::new(""),
            text_font(13.0),
            light,
            Anchor::CENTER_LEFT,
            Transform::from_xyz(caption_at[0], caption_at[1], 1.0),
        ))
        .id();
    // The env's overlays (label and value) along the bottom of the scene, wrapped upwards so
    // they never spill into the panel.
    let overlays_at = regions.to_world(regions.scene.x0 + 6.0, regions.scene.y1 - 4.0);
    let overlays = commands
        .spawn((
            Text2d::new(""),
            text_font(11.0),
            TextColor(Color::srgb_u8(60, 60, 60)),
            TextBounds::new_horizontal((regions.scene.x1 - regions.scene.x0 - 12.0).max(20.0)),
            Anchor::BOTTOM_LEFT,
            Transform::from_xyz(overlays_at[0], overlays_at[1], 1.0),
        ))
        .id();
    if let (Some(layout), Some(area)) = (&setup.config.panel, regions.panel) {
        spawn_panel_labels(&mut commands, layout, area, &regions, light);
    }
    commands.insert_resource(Drawn {
        scene,
        panel,
        caption,
        overlays,
    });
}

/// The panel's title and its neurons' labels, in the panel's `area`.
fn spawn_panel_labels(
    commands: &mut Commands,
    layout: &PanelLayout,
    area: Area,
    regions: &Regions,
    light: TextColor,
) {
    let title_at = regions.to_world(area.x0 + 8.0, area.y0 + 12.0);
    commands.spawn((
        Text2d::new(layout.title.clone()),
        text_font(12.0),
        light,
        Anchor::CENTER_LEFT,
        Transform::from_xyz(title_at[0], title_at[1], 1.0),
    ));
    for (node, (at, side)) in layout
        .nodes
        .iter()
        .zip(geometry::label_anchors(layout, regions))
    {
        if node.label.is_empty() {
            continue;
        }
        let (anchor, room) = match side {
            LabelSide::Left => (Anchor::CENTER_RIGHT, geometry::LABEL_MARGIN_LEFT),
            LabelSide::Right => (Anchor::CENTER_LEFT, geometry::LABEL_MARGIN_RIGHT),
        };
        commands.spawn((
            Text2d::new(fit_label(&node.label, room)),
            text_font(9.0),
            light,
            anchor,
            Transform::from_xyz(at[0], at[1], 1.0),
        ));
    }
}

/// Shortens a label to what fits in `room` pixels at the label font (about 5.6 px a glyph).
fn fit_label(label: &str, room: f32) -> String {
    let max = ((room - 10.0) / 5.6).floor().max(3.0) as usize;
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let head: String = label.chars().take(max - 1).collect();
        format!("{head}~")
    }
}

fn redraw(
    view: Res<CurrentView>,
    setup: Res<ViewSetup>,
    drawn: Option<Res<Drawn>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut texts: Query<&mut Text2d>,
) {
    let Some(drawn) = drawn else {
        return;
    };
    let view = &view.0;
    if let Some(mut mesh) = meshes.get_mut(&drawn.scene) {
        let mut data = geometry::scene_mesh(&view.frame, &setup.regions);
        if let Some(inset) = &view.inset {
            geometry::inset_mesh(&mut data, inset, &setup.regions);
        }
        *mesh = to_mesh(data);
    }
    if let Some(layout) = &setup.config.panel {
        if let Some(mut mesh) = meshes.get_mut(&drawn.panel) {
            *mesh = to_mesh(geometry::panel_mesh(
                layout,
                view.panel.as_ref(),
                &setup.regions,
            ));
        }
    }
    if let Ok(mut text) = texts.get_mut(drawn.caption) {
        text.0.clone_from(&view.caption);
    }
    if let Ok(mut text) = texts.get_mut(drawn.overlays) {
        text.0 = view
            .frame
            .overlays
            .iter()
            .map(|o| format!("{} {:.2}", o.label, o.value))
            .collect::<Vec<_>>()
            .join("   ");
    }
}

/// Points `XDG_RUNTIME_DIR` at a private directory when it is unset or unusable (containers,
/// CI, `sudo`): the window and graphics libraries otherwise print "XDG_RUNTIME_DIR is invalid"
/// lines that look like failures.
fn ensure_runtime_dir() {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let usable = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .and_then(|d| std::fs::metadata(d).ok())
        .is_some_and(|m| m.is_dir() && m.permissions().mode() & 0o077 == 0);
    if usable {
        return;
    }
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let dir = std::env::temp_dir().join(format!("wormnet-runtime-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let private = std::fs::metadata(&dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
    if private {
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

/// Builds the app's plugins; `panic`s inside Bevy's renderer start-up (no adapter) become
/// [`RenderError::NoAdapter`].
fn build_app(
    config: RenderConfig,
    window: Option<Window>,
    target: impl FnOnce(&mut App) -> Option<Handle<Image>>,
) -> Result<App, RenderError> {
    config.check()?;
    ensure_runtime_dir();
    let regions = Regions::new(config.width, config.height, config.panel.is_some());
    let offscreen = window.is_none();
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut app = App::new();
        let plugins = DefaultPlugins
            .set(WindowPlugin {
                primary_window: window,
                exit_condition: if offscreen {
                    ExitCondition::DontExit
                } else {
                    ExitCondition::OnPrimaryClosed
                },
                close_when_requested: true,
                ..default()
            })
            .set(RenderPlugin {
                // Otherwise the first frames come out blank while shaders compile.
                synchronous_pipeline_compilation: true,
                ..default()
            })
            // The CLI has its own tracing subscriber.
            .disable::<LogPlugin>();
        if offscreen {
            // WinitPlugin needs a display server; offscreen needs none.
            app.add_plugins(plugins.disable::<WinitPlugin>());
        } else {
            app.add_plugins(plugins);
        }
        let target = target(&mut app);
        app.insert_resource(ViewSetup {
            config,
            regions,
            target,
        });
        app.add_plugins(ViewPlugin);
        app
    }));
    built.map_err(|_| RenderError::NoAdapter)
}

/// Renders views to RGBA pixels without a window or display server: a camera draws into an
/// `Image`, and a screenshot of it is read back for every view.
pub struct OffscreenRenderer {
    app: App,
    target: Handle<Image>,
    frames: Arc<Mutex<BTreeMap<usize, image::RgbaImage>>>,
}

impl OffscreenRenderer {
    /// Starts Bevy's renderer (software Vulkan where there is no GPU) for `config`'s size.
    pub fn new(config: RenderConfig) -> Result<OffscreenRenderer, RenderError> {
        let (width, height) = (config.width, config.height);
        let mut handle = None;
        let mut app = build_app(config, None, |app| {
            let image =
                Image::new_target_texture(width, height, TextureFormat::Rgba8UnormSrgb, None);
            let h = app.world_mut().resource_mut::<Assets<Image>>().add(image);
            handle = Some(h.clone());
            Some(h)
        })?;
        let target = handle.ok_or(RenderError::NoAdapter)?;
        // The renderer picks its adapter while finishing; without one, Bevy panics there.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            app.finish();
            app.cleanup();
        }))
        .map_err(|_| RenderError::NoAdapter)?;
        if app.world().get_resource::<RenderDevice>().is_none() {
            return Err(RenderError::NoAdapter);
        }
        // The target image and the pipelines reach the GPU over the first updates; a picture
        // taken before that is blank.
        for _ in 0..3 {
            app.update();
        }
        Ok(OffscreenRenderer {
            app,
            target,
            frames: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    fn wait_for_gpu(&self) {
        if let Some(device) = self.app.world().get_resource::<RenderDevice>() {
            // Errors here only mean nothing was pending.
            let _ = device.poll(bevy::render::render_resource::PollType::Wait {
                submission_index: None,
                timeout: None,
            });
        }
    }

    /// Draws every view in order and hands each picture to `sink` as soon as it is read back
    /// (pictures arrive a frame or two late, so drawing and reading overlap). Returns the
    /// number of pictures.
    pub fn render<I, F>(&mut self, views: I, mut sink: F) -> Result<usize, RenderError>
    where
        I: IntoIterator<Item = View>,
        F: FnMut(usize, image::RgbaImage) -> Result<(), String>,
    {
        self.frames.lock().map(|mut f| f.clear()).ok();
        let mut next = 0usize;
        let mut requested = 0usize;
        let mut drain = |frames: &Arc<Mutex<BTreeMap<usize, image::RgbaImage>>>,
                         next: &mut usize|
         -> Result<(), RenderError> {
            loop {
                let picture = match frames.lock() {
                    Ok(mut f) => f.remove(next),
                    Err(_) => None,
                };
                let Some(picture) = picture else {
                    return Ok(());
                };
                sink(*next, picture).map_err(RenderError::Sink)?;
                *next += 1;
            }
        };
        for view in views {
            let index = requested;
            requested += 1;
            self.app.world_mut().insert_resource(CurrentView(view));
            let frames = self.frames.clone();
            self.app
                .world_mut()
                .spawn(Screenshot::image(self.target.clone()))
                .observe(move |captured: On<ScreenshotCaptured>| {
                    if let Ok(picture) = captured.image.clone().try_into_dynamic() {
                        if let Ok(mut f) = frames.lock() {
                            f.insert(index, picture.to_rgba8());
                        }
                    }
                });
            self.app.update();
            self.wait_for_gpu();
            drain(&self.frames, &mut next)?;
        }
        // Read-backs finish one or two updates later.
        let mut spare = 0;
        while next < requested && spare < 30 {
            self.app.update();
            self.wait_for_gpu();
            drain(&self.frames, &mut next)?;
            spare += 1;
        }
        if next < requested {
            return Err(RenderError::MissingFrames {
                got: next,
                expected: requested,
            });
        }
        Ok(requested)
    }
}

/// How the live window behaves.
#[derive(Clone, Debug, Default)]
pub struct WindowOptions {
    /// Window title.
    pub title: String,
    /// Save a screenshot of the window to this PNG after `screenshot_after` seconds, then close
    /// (for checking the window on a headless machine under Xvfb).
    pub screenshot: Option<PathBuf>,
    /// Seconds before the screenshot.
    pub screenshot_after: f32,
}

/// The live episode inside the window, with the keyboard's playback state.
struct Live {
    source: Box<dyn LiveSource>,
    paused: bool,
    speed: f32,
    owed: f32,
    shown: View,
}

#[derive(Resource)]
struct ScreenshotPlan {
    path: PathBuf,
    after: f32,
    taken: bool,
}

const KEYS_HELP: &str = "[space] pause  [.] step  [r] new seed  [+/-] speed";

fn drive(
    mut live: NonSendMut<Live>,
    keys: Res<ButtonInput<KeyCode>>,
    time: Res<Time>,
    mut current: ResMut<CurrentView>,
) {
    let live = &mut *live;
    let mut changed = false;
    if keys.just_pressed(KeyCode::Space) {
        live.paused = !live.paused;
        changed = true;
    }
    if keys.just_pressed(KeyCode::Equal)
        || keys.just_pressed(KeyCode::NumpadAdd)
        || keys.just_pressed(KeyCode::ArrowUp)
    {
        live.speed = (live.speed * 2.0).min(16.0);
        changed = true;
    }
    if keys.just_pressed(KeyCode::Minus)
        || keys.just_pressed(KeyCode::NumpadSubtract)
        || keys.just_pressed(KeyCode::ArrowDown)
    {
        live.speed = (live.speed / 2.0).max(1.0 / 16.0);
        changed = true;
    }
    if keys.just_pressed(KeyCode::KeyR) {
        live.shown = live.source.reset();
        live.owed = 0.0;
        changed = true;
    }
    let mut steps = 0;
    if live.paused {
        if keys.just_pressed(KeyCode::Period) || keys.just_pressed(KeyCode::ArrowRight) {
            steps = 1;
        }
    } else {
        let dt = live.source.dt().max(1e-4);
        live.owed += time.delta_secs() * live.speed;
        // At most 32 steps per frame, so a slow machine plays slower instead of stalling.
        while live.owed >= dt && steps < 32 {
            live.owed -= dt;
            steps += 1;
        }
        if steps == 32 {
            live.owed = 0.0;
        }
    }
    for _ in 0..steps {
        live.shown = match live.source.step() {
            Some(view) => view,
            None => live.source.reset(),
        };
        changed = true;
    }
    if changed || current.0.frame.time == 0.0 && current.0.caption.is_empty() {
        let mut view = live.shown.clone();
        let state = if live.paused { "paused" } else { "playing" };
        view.caption = format!(
            "{}  | {state} x{}  {KEYS_HELP}",
            view.caption,
            format_speed(live.speed)
        );
        current.0 = view;
    }
}

fn format_speed(speed: f32) -> String {
    if speed >= 1.0 {
        format!("{speed:.0}")
    } else {
        format!("1/{:.0}", 1.0 / speed)
    }
}

fn take_screenshot(mut commands: Commands, time: Res<Time>, plan: Option<ResMut<ScreenshotPlan>>) {
    let Some(mut plan) = plan else {
        return;
    };
    if plan.taken || time.elapsed_secs() < plan.after {
        return;
    }
    plan.taken = true;
    let path = plan.path.clone();
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
            let result = captured
                .image
                .clone()
                .try_into_dynamic()
                .map_err(|e| e.to_string())
                .and_then(|img| img.to_rgb8().save(&path).map_err(|e| e.to_string()));
            match result {
                Ok(()) => {
                    eprintln!("screenshot written to {}", path.display());
                    exit.write(AppExit::Success);
                }
                Err(e) => {
                    eprintln!("cannot write screenshot {}: {e}", path.display());
                    exit.write(AppExit::error());
                }
            }
        },
    );
}

/// Opens a window (X11; Xvfb works) and plays `source` live beside the neuron panel until the
/// window is closed. Keys: space pause, `.`/→ single step while paused, `r` reset with a new
/// seed, `+`/`-` (or ↑/↓) faster/slower.
pub fn run_window(
    config: RenderConfig,
    mut source: Box<dyn LiveSource>,
    options: WindowOptions,
) -> Result<(), RenderError> {
    let window = Window {
        title: options.title.clone(),
        resolution: WindowResolution::new(config.width, config.height),
        resizable: false,
        ..default()
    };
    let mut app = build_app(config, Some(window), |_| None)?;
    let first = source.reset();
    app.insert_non_send(Live {
        source,
        paused: false,
        speed: 1.0,
        owed: 0.0,
        shown: first,
    });
    app.add_systems(Update, (drive, take_screenshot));
    if let Some(path) = options.screenshot {
        app.insert_resource(ScreenshotPlan {
            path,
            after: options.screenshot_after,
            taken: false,
        });
    }
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(code) => Err(RenderError::Sink(format!(
            "the window exited with code {code}"
        ))),
    }
}
