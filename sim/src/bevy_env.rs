//! Headless Bevy + Rapier stepping: turns a Bevy plugin (bodies + systems for actions,
//! observations and rewards) into an [`Env`] whose physics advances exactly one fixed `dt` per
//! `step`, never by wall-clock time.
//!
//! Data moves through three resources: the wrapper writes [`EnvAction`] before each update;
//! the plugin's systems in [`EnvSystems::Act`] (in `Update`) apply it; physics runs in
//! `PostUpdate`; the plugin's systems in [`EnvSystems::Observe`] (after Rapier's writeback)
//! fill [`EnvOutput`]. By default each episode builds a fresh world seeded from [`EpisodeRng`]
//! (a few ms), so an episode is bit-identical to itself whatever ran before it. Two ways reuse
//! the world instead, both much cheaper for short episodes:
//! - [`BevyEnvPlugin::respawns_in_place`]: the scene (bodies, the Rapier context) is despawned
//!   and the startup schedules run again, so a plugin whose startup systems set all episode
//!   state gets the episodes of a fresh `App`, bit for bit (the worm and the vehicle).
//! - [`BevyEnvPlugin::resets_in_place`]: the plugin restores its start state in the
//!   [`EnvReset`] schedule (teleport bodies, zero velocities); the same run for the same seed
//!   and actions, but not the episodes of a fresh `App` (Rapier keeps its contact state).
//!
//! Each env's world is a sub-app of a host `App`. [`BevyEnv::new`] gives an env a host of its
//! own; [`BevyEnv::group`] puts K envs in one `App`, one sub-app (one world, one Rapier context)
//! each. An env's episodes do not depend on K, bit for bit: no state crosses worlds, and each
//! env steps and resets its own sub-app. A panic in one world leaves the others usable.

use std::cell::{RefCell, RefMut};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use bevy::app::{
    App, AppLabel, InternedAppLabel, PostStartup, PostUpdate, PreStartup, Startup, SubApp, Update,
};
use bevy::ecs::prelude::*;
use bevy::ecs::resource::IsResource;
use bevy::ecs::schedule::ScheduleLabel;
use bevy::math::Vec2;
use bevy::transform::components::GlobalTransform;
use bevy::transform::TransformPlugin;
use bevy_rapier2d::plugin::{
    NoUserData, PhysicsSet, RapierConfiguration, RapierContextInitialization, RapierPhysicsPlugin,
    TimestepMode,
};
use bevy_rapier2d::prelude::Collider;
use bevy_rapier2d::rapier::dynamics::IntegrationParameters;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::{Env, EnvSpec, Step};
use crate::frame::{Frame, Geometry, Polyline, Pose, Rgba, Shape};

/// The action of the current step (already validated/clipped against the spec), for the
/// plugin's [`EnvSystems::Act`] systems.
#[derive(Resource, Clone, Debug, Default)]
pub struct EnvAction(pub Vec<f32>);

/// What the plugin's [`EnvSystems::Observe`] systems report after the physics step.
/// `reward`, `terminated` and `truncated` are cleared before every step.
#[derive(Resource, Clone, Debug, Default)]
pub struct EnvOutput {
    /// The observation, `spec.obs_dim()` long.
    pub observation: Vec<f32>,
    /// Reward of this step.
    pub reward: f32,
    /// The task ended.
    pub terminated: bool,
    /// The env cut the episode short (the time limit is applied outside).
    pub truncated: bool,
}

/// The episode's random source: use it in `Startup` systems to randomise initial states, so
/// episodes are reproducible from the env seed.
#[derive(Resource, Debug)]
pub struct EpisodeRng(pub ChaCha8Rng);

/// Where env systems go, so they are ordered around the physics step.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnvSystems {
    /// In `Update`: read [`EnvAction`], set forces, motors, velocities.
    Act,
    /// In `PostUpdate` after Rapier's writeback: fill [`EnvOutput`].
    Observe,
}

/// Schedule run (outside `update`) to start a new episode in the existing `App`, after a new
/// [`EpisodeRng`] is inserted; only used when [`BevyEnvPlugin::resets_in_place`] is true.
#[derive(ScheduleLabel, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnvReset;

/// Physics settings of a Bevy env; `dt` comes from the spec.
#[derive(Clone, Copy, Debug)]
pub struct PhysicsConfig {
    /// Rapier steps per env step (each `dt / substeps` long).
    pub substeps: usize,
    /// Gravity in m/s².
    pub gravity: Vec2,
    /// Rapier solver iterations (raise for stiff joint chains).
    pub solver_iterations: usize,
}

impl Default for PhysicsConfig {
    fn default() -> Self {
        PhysicsConfig {
            substeps: 1,
            gravity: Vec2::new(0.0, -9.81),
            solver_iterations: 4,
        }
    }
}

/// A Bevy environment: its spec, physics settings, and a plugin-like `build` that spawns the
/// bodies (in `Startup`) and adds systems in [`EnvSystems`]. The same definition can later drive
/// a windowed viewer.
pub trait BevyEnvPlugin: Send + Sync + 'static {
    /// The env's spec (`dt` is the physics step per env step).
    fn spec(&self) -> EnvSpec;

    /// Substeps, gravity, solver iterations.
    fn physics(&self) -> PhysicsConfig {
        PhysicsConfig::default()
    }

    /// Adds the env's startup and per-step systems to a fresh headless `App`.
    fn build(&self, app: &mut App);

    /// Whether an unseeded `reset` (every auto-reset) reuses the `App` by running the plugin's
    /// [`EnvReset`] systems instead of building a fresh `App`. Reproducible from the seed either
    /// way; a seeded `reset` always rebuilds, so it matches a fresh env bit for bit.
    fn resets_in_place(&self) -> bool {
        false
    }

    /// Whether an unseeded `reset` rebuilds the scene inside the existing `App` instead of
    /// building a fresh `App`: every entity the startup systems spawned (bodies, the Rapier
    /// context) is despawned and the startup schedules run again. For a plugin whose startup
    /// systems set every piece of episode state, the episode is the one a fresh `App` gives,
    /// bit for bit, at a fraction of the cost. [`BevyEnvPlugin::resets_in_place`] wins when
    /// both are true.
    fn respawns_in_place(&self) -> bool {
        false
    }

    /// The scene for renderers; by default every collider with its pose.
    fn frame(&self, world: &World) -> Frame {
        collider_frame(world)
    }

    /// The env's expert action in this world ([`Env::expert_action`]); none by default.
    fn expert_action(&self, world: &World, action: &mut [f32]) -> bool {
        let _ = (world, action);
        false
    }
}

/// Which sub-app of the host `App` holds an env's world.
#[derive(AppLabel, Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct EnvSlot(usize);

/// An [`Env`] backed by a headless Bevy world (no window, no renderer), held as a sub-app of a
/// host `App` that it may share with other envs ([`BevyEnv::group`]). `!Send` like `App`:
/// build it on the thread that steps it (VecEnv workers do).
pub struct BevyEnv<P: BevyEnvPlugin> {
    plugin: Arc<P>,
    spec: EnvSpec,
    host: Rc<RefCell<App>>,
    /// Interned once: interning a label takes a process-wide lock, too dear for every step.
    slot: InternedAppLabel,
    /// The entities that existed before the first update (observers and the like): a respawn
    /// keeps them and despawns every other entity that is not a resource.
    built: HashSet<Entity>,
    seeds: ChaCha8Rng,
    steps: u32,
}

impl<P: BevyEnvPlugin> BevyEnv<P> {
    /// Wraps `plugin` in an `App` of its own; the world is built on the first `reset`.
    pub fn new(plugin: P) -> Self {
        Self::in_host(plugin, Rc::new(RefCell::new(App::empty())), 0)
    }

    /// K envs in one `App`, one sub-app (world) each: the layout `env.envs_per_app` asks for.
    /// Each env gives the episodes it would give in an `App` of its own, bit for bit.
    pub fn group(plugins: impl IntoIterator<Item = P>) -> Vec<Self> {
        let host = Rc::new(RefCell::new(App::empty()));
        plugins
            .into_iter()
            .enumerate()
            .map(|(slot, plugin)| Self::in_host(plugin, Rc::clone(&host), slot))
            .collect()
    }

    fn in_host(plugin: P, host: Rc<RefCell<App>>, slot: usize) -> Self {
        let spec = plugin.spec();
        BevyEnv {
            plugin: Arc::new(plugin),
            spec,
            host,
            slot: EnvSlot(slot).intern(),
            built: HashSet::new(),
            seeds: ChaCha8Rng::seed_from_u64(0),
            steps: 0,
        }
    }

    /// Runs `inspect` on the env's live world, for tests and tools that look into it (None
    /// before `reset`). The `App` is borrowed only during the call, so envs sharing it stay free
    /// to step.
    pub fn with_world<R>(&self, inspect: impl FnOnce(&World) -> R) -> Option<R> {
        let host = self.host.borrow();
        host.get_sub_app(self.slot).map(|sub| inspect(sub.world()))
    }

    /// How many envs share this env's `App` (itself included).
    pub fn envs_in_app(&self) -> usize {
        Rc::strong_count(&self.host)
    }

    fn sub_app(&self) -> Option<RefMut<'_, SubApp>> {
        RefMut::filter_map(self.host.borrow_mut(), |host| {
            host.get_sub_app_mut(self.slot)
        })
        .ok()
    }

    fn build_world(&mut self, episode_seed: u64) -> SubApp {
        let physics = self.plugin.physics();
        let mut app = App::new();
        let integration_parameters = IntegrationParameters {
            num_solver_iterations: physics.solver_iterations.max(1),
            ..IntegrationParameters::default()
        };
        let mut rapier_configuration = RapierConfiguration::new(1.0);
        rapier_configuration.gravity = physics.gravity;
        // Paused for the first update, which only spawns the scene (the reset observation).
        rapier_configuration.physics_pipeline_active = false;
        // Not `MinimalPlugins`: its time systems, fixed-timestep loop and task-pool ticking
        // cost ~12 % of a small env's step (callgrind, worm) and nothing here needs them. Physics reads only
        // `TimestepMode::Fixed`; `Time` is present because Rapier's step system asks for it.
        bevy::tasks::ComputeTaskPool::get_or_init(bevy::tasks::TaskPool::default);
        app.init_resource::<bevy::time::Time>();
        app.add_plugins((
            TransformPlugin,
            RapierPhysicsPlugin::<NoUserData>::default().with_custom_initialization(
                RapierContextInitialization::InitializeDefaultRapierContext {
                    integration_parameters,
                    rapier_configuration,
                },
            ),
        ));
        app.insert_resource(TimestepMode::Fixed {
            dt: self.spec.dt,
            substeps: physics.substeps.max(1),
        });
        app.insert_resource(EnvAction(vec![0.0; self.spec.action_dim()]));
        app.insert_resource(EnvOutput {
            observation: vec![0.0; self.spec.obs_dim()],
            ..EnvOutput::default()
        });
        app.insert_resource(EpisodeRng(ChaCha8Rng::seed_from_u64(episode_seed)));
        app.init_schedule(EnvReset);
        app.configure_sets(Update, EnvSystems::Act);
        app.configure_sets(PostUpdate, EnvSystems::Observe.after(PhysicsSet::Writeback));
        self.plugin.build(&mut app);
        app.finish();
        app.cleanup();
        // The built app's main world becomes this env's sub-app; `SubApp::update` runs the
        // same `Main` schedule and tracker clearing as `App::update` did.
        let mut sub = std::mem::take(app.main_mut());
        self.built = sub.world().iter_entities().map(|e| e.id()).collect();
        sub.update();
        set_physics_active(sub.world_mut(), true);
        sub
    }

    /// Starts a new episode in the existing world as a fresh one would: despawns what the
    /// startup systems and the episode spawned, restores the step resources, runs the startup
    /// schedules again, then one update with physics paused (the reset observation).
    fn respawn_in_place(&self, sub: &mut SubApp, episode_seed: u64) {
        let world = sub.world_mut();
        let spawned: Vec<Entity> = world
            .iter_entities()
            .filter(|e| !self.built.contains(&e.id()) && !e.contains::<IsResource>())
            .map(|e| e.id())
            .collect();
        for entity in spawned {
            // Despawning a parent also despawns its children: skip those already gone.
            let _ = world.try_despawn(entity);
        }
        world.insert_resource(EpisodeRng(ChaCha8Rng::seed_from_u64(episode_seed)));
        world.insert_resource(EnvAction(vec![0.0; self.spec.action_dim()]));
        world.insert_resource(EnvOutput {
            observation: vec![0.0; self.spec.obs_dim()],
            ..EnvOutput::default()
        });
        for schedule in [PreStartup.intern(), Startup.intern(), PostStartup.intern()] {
            let _ = world.try_run_schedule(schedule);
        }
        sub.update();
        set_physics_active(sub.world_mut(), true);
    }

    /// Starts a new episode in the existing world: new RNG, the plugin's reset systems, then one
    /// update with physics paused so Rapier takes the new poses and the observation is fresh.
    fn reset_in_place(sub: &mut SubApp, episode_seed: u64) {
        let world = sub.world_mut();
        world.insert_resource(EpisodeRng(ChaCha8Rng::seed_from_u64(episode_seed)));
        world.run_schedule(EnvReset);
        world.resource_mut::<EnvAction>().0.fill(0.0);
        set_physics_active(world, false);
        sub.update();
        set_physics_active(sub.world_mut(), true);
    }

    fn live(&self) -> RefMut<'_, SubApp> {
        match self.sub_app() {
            Some(sub) => sub,
            None => panic!("env `{}`: step before reset", self.spec.name),
        }
    }
}

impl<P: BevyEnvPlugin> Env for BevyEnv<P> {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.seeds = ChaCha8Rng::seed_from_u64(seed);
        }
        let episode_seed = self.seeds.random::<u64>();
        // A seeded reset always rebuilds, so it reproduces a fresh env exactly.
        let unseeded = seed.is_none();
        match self.sub_app() {
            Some(mut sub) if unseeded && self.plugin.resets_in_place() => {
                Self::reset_in_place(&mut sub, episode_seed);
            }
            Some(mut sub) if unseeded && self.plugin.respawns_in_place() => {
                self.respawn_in_place(&mut sub, episode_seed);
            }
            old => {
                // Drop the old world first: a rebuilt one shares no state with the last episode.
                drop(old);
                drop(self.host.borrow_mut().remove_sub_app(self.slot));
                let sub = self.build_world(episode_seed);
                self.host.borrow_mut().insert_sub_app(self.slot, sub);
            }
        }
        self.steps = 0;
        obs.copy_from_slice(&self.live().world().resource::<EnvOutput>().observation);
    }

    fn step(&mut self, action: &[f32], obs: &mut [f32]) -> Step {
        let mut sub = self.live();
        let world = sub.world_mut();
        world.resource_mut::<EnvAction>().0.copy_from_slice(action);
        {
            let mut out = world.resource_mut::<EnvOutput>();
            out.reward = 0.0;
            out.terminated = false;
            out.truncated = false;
        }
        sub.update();
        let out = sub.world().resource::<EnvOutput>();
        obs.copy_from_slice(&out.observation);
        let step = Step {
            reward: out.reward,
            terminated: out.terminated,
            truncated: out.truncated,
        };
        drop(sub);
        self.steps += 1;
        step
    }

    fn frame(&self) -> Frame {
        let Some(mut frame) = self.with_world(|world| self.plugin.frame(world)) else {
            return Frame::default();
        };
        frame.time = self.steps as f32 * self.spec.dt;
        frame
    }

    fn expert_action(&self, action: &mut [f32]) -> bool {
        self.with_world(|world| self.plugin.expert_action(world, action))
            .unwrap_or(false)
    }
}

impl<P: BevyEnvPlugin> Drop for BevyEnv<P> {
    /// Frees the env's world at once, not when the last env sharing its `App` goes.
    fn drop(&mut self) {
        if let Ok(mut host) = self.host.try_borrow_mut() {
            drop(host.remove_sub_app(self.slot));
        }
    }
}

fn set_physics_active(world: &mut World, active: bool) {
    let mut configs = world.query::<&mut RapierConfiguration>();
    for mut config in configs.iter_mut(world) {
        config.physics_pipeline_active = active;
    }
}

/// Every collider, in spawn order, as a [`Shape`] (balls, boxes, capsules, convex polygons) or
/// a [`Polyline`] (segments, polylines) at its global pose: a renderer-ready scene for any
/// Rapier env.
pub fn collider_frame(world: &World) -> Frame {
    let mut frame = Frame::default();
    let Some(mut query) = world.try_query::<(Entity, &Collider, &GlobalTransform)>() else {
        return frame;
    };
    // Spawn order, not archetype order, so a shape's index in the frame is stable.
    let mut colliders: Vec<_> = query.iter(world).collect();
    colliders.sort_by_key(|(entity, _, _)| entity.index_u32());
    for (_, collider, transform) in colliders {
        let t = transform.compute_transform();
        let (axis, angle) = t.rotation.to_axis_angle();
        let angle = if axis.z < 0.0 { -angle } else { angle };
        let pose = Pose {
            x: t.translation.x,
            y: t.translation.y,
            angle,
        };
        if let Some(geometry) = add_collider(&mut frame, collider, pose) {
            frame.shapes.push(Shape {
                geometry,
                pose,
                color: COLLIDER_BODY,
            });
        }
    }
    frame
}

/// The fill of solid colliders in a [`collider_frame`].
const COLLIDER_BODY: Rgba = Rgba::rgb(70, 130, 180);
/// The colour of segment and polyline colliders in a [`collider_frame`].
const COLLIDER_LINE: Rgba = Rgba::rgb(60, 60, 60);

/// A collider at `pose` as a shape's geometry (balls, boxes, convex polygons), or `None` after
/// adding it to `frame` as polylines in world coordinates (capsules, segments, polylines) or
/// skipping it (other shapes).
fn add_collider(frame: &mut Frame, collider: &Collider, pose: Pose) -> Option<Geometry> {
    let (sin, cos) = pose.angle.sin_cos();
    let to_world = |p: Vec2| -> [f32; 2] {
        [
            pose.x + cos * p.x - sin * p.y,
            pose.y + sin * p.x + cos * p.y,
        ]
    };
    let mut line = |points: Vec<[f32; 2]>, color: Rgba, width: f32| {
        frame.polylines.push(Polyline {
            points,
            closed: false,
            color,
            width,
        });
    };
    if let Some(ball) = collider.as_ball() {
        Some(Geometry::Circle {
            radius: ball.radius(),
        })
    } else if let Some(cuboid) = collider.as_cuboid() {
        let h = cuboid.half_extents();
        Some(Geometry::Rect {
            half_width: h.x,
            half_height: h.y,
        })
    } else if let Some(capsule) = collider.as_capsule() {
        let seg = capsule.segment();
        let points = [seg.a(), seg.b()].into_iter().map(to_world).collect();
        line(points, COLLIDER_BODY, 2.0 * capsule.radius());
        None
    } else if let Some(poly) = collider.as_convex_polygon() {
        Some(Geometry::Polygon {
            points: poly.points().map(|p| [p.x, p.y]).collect(),
        })
    } else if let Some(seg) = collider.as_segment() {
        line(
            vec![to_world(seg.a()), to_world(seg.b())],
            COLLIDER_LINE,
            0.02,
        );
        None
    } else if let Some(polyline) = collider.as_polyline() {
        for (a, b) in polyline.segments() {
            line(vec![to_world(a), to_world(b)], COLLIDER_LINE, 0.02);
        }
        None
    } else {
        None
    }
}
