//! What the renderer draws and is told: the neuron panel's layout and per-step state, a view
//! (scene + panel) and the size of the picture, and how rendering fails.

use crate::frame::{Frame, Rgba};

/// Why a renderer could not start or produce pixels.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No wgpu adapter (no GPU and no software Vulkan driver).
    #[error(
        "no graphics adapter: install Mesa's software Vulkan driver (scripts/setup --render \
         installs mesa-vulkan-drivers and libvulkan1) or run on a machine with a GPU"
    )]
    NoAdapter,
    /// Frames were requested but did not come back from the GPU.
    #[error("the renderer returned {got} of {expected} frames")]
    MissingFrames {
        /// Frames received.
        got: usize,
        /// Frames requested.
        expected: usize,
    },
    /// The picture size is unusable.
    #[error("picture size {width}x{height} must be between 64x64 and 4096x4096")]
    Size {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// The frame sink (e.g. a PNG writer) failed.
    #[error("{0}")]
    Sink(String),
}

/// A neuron in the panel: where it sits (any units: the panel is fitted to the space it gets)
/// and how it is labelled.
#[derive(Clone, Debug, PartialEq)]
pub struct PanelNode {
    /// Position, x to the right, y downwards, in the layout's own units.
    pub position: [f32; 2],
    /// Text shown beside the neuron (empty: none).
    pub label: String,
    /// Where the label goes.
    pub label_side: LabelSide,
    /// Ring colour telling the neuron's role (sensory, inter, command, motor).
    pub role_color: Rgba,
}

/// Side of a neuron its label is written on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelSide {
    /// Right-aligned to the left of the neuron (inputs).
    Left,
    /// Left-aligned to the right of the neuron (outputs).
    Right,
}

/// A synapse in the panel, by node index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanelEdge {
    /// Presynaptic node.
    pub from: usize,
    /// Postsynaptic node.
    pub to: usize,
    /// +1 excitatory, −1 inhibitory, 0 a gap junction (drawn grey).
    pub polarity: i8,
}

/// The fixed part of the neuron panel: nodes and synapses, drawn once per frame in the
/// colours of the current [`PanelState`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PanelLayout {
    /// Heading above the panel.
    pub title: String,
    /// Neurons (and sensory inputs).
    pub nodes: Vec<PanelNode>,
    /// Synapses.
    pub edges: Vec<PanelEdge>,
}

/// The panel's changing part: one activity per node and per edge, each in [−1, 1] (the caller
/// squashes raw potentials), so colours mean the same thing for every policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PanelState {
    /// Per node: −1 (blue) … 0 (white) … +1 (red).
    pub node_activity: Vec<f32>,
    /// Per edge: 0 (idle, faint) … 1 (fully active, saturated polarity colour).
    pub edge_activity: Vec<f32>,
}

/// Everything drawn for one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// The env's scene.
    pub frame: Frame,
    /// Panel colours (None: the panel keeps its idle colours).
    pub panel: Option<PanelState>,
    /// A line of text above the scene (env, step, reward…).
    pub caption: String,
    /// A small picture over the scene's top-left corner: what the agent sees (a camera
    /// observation), possibly tinted by what drove its action.
    pub inset: Option<Inset>,
}

/// A picture of `width × height` pixels, rows from the top, drawn pixel by pixel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inset {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width × height` colours, row-major from the top-left pixel.
    pub pixels: Vec<Rgba>,
}

/// Picture size and the panel, fixed for the life of a renderer.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderConfig {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The neuron panel drawn to the right of the scene (None: the scene fills the picture).
    pub panel: Option<PanelLayout>,
}

impl RenderConfig {
    /// Rejects sizes no renderer should be asked for.
    pub fn check(&self) -> Result<(), RenderError> {
        let ok = |v: u32| (64..=4096).contains(&v);
        if ok(self.width) && ok(self.height) {
            Ok(())
        } else {
            Err(RenderError::Size {
                width: self.width,
                height: self.height,
            })
        }
    }
}

/// A source of views for the live window: the policy acting in an env, one step per call.
pub trait LiveSource: 'static {
    /// Starts a new episode (a fresh seed each time) and returns its first view.
    fn reset(&mut self) -> View;
    /// Advances one env step; `None` when the episode is over (the window then resets).
    fn step(&mut self) -> Option<View>;
    /// Seconds of simulated time per step (playback at speed 1 is real time).
    fn dt(&self) -> f32;
}
