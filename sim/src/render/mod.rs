//! Drawing episodes with Bevy: the scene of any env (from its [`Frame`]) beside a neuron panel,
//! in a window (`wormnet watch`) or offscreen to pixels (`wormnet record`).
//!
//! The renderer only ever sees [`View`]s: a [`Frame`] (plain shapes, polylines and overlays that
//! every env's `frame()` returns, live or from a recorded [`crate::rollout::Rollout`]) plus the
//! panel's current activities. So a new env, or a recording made on another machine, renders
//! with no renderer change, and the simulation itself never runs inside the render `App`.
//!
//! Everything is turned into two triangle meshes with vertex colours ([`geometry`], pure and
//! testable without a GPU) and a few `Text2d` labels; Bevy draws them through wgpu, which on a
//! machine without a GPU is Mesa's lavapipe (software Vulkan).
//!
//! The view types and the geometry are always compiled (callers build panels and views, and
//! tests check them, in headless builds too); the Bevy app behind them needs the `render`
//! feature, which pulls wgpu, naga and winit.

#[cfg(feature = "render")]
mod app;
pub mod geometry;
mod view;

#[cfg(feature = "render")]
pub use app::{run_window, OffscreenRenderer, WindowOptions};
pub use view::{
    Inset, LabelSide, LiveSource, PanelEdge, PanelLayout, PanelNode, PanelState, RenderConfig,
    RenderError, View,
};
