//! Unit tests of the render geometry (kept apart so the module stays readable).

use super::*;
use crate::frame::{Polyline, Pose, Shape};
use crate::render::PanelNode;

fn frame() -> Frame {
    Frame {
        time: 0.0,
        view: Some([-2.0, -1.0, 2.0, 1.0]),
        shapes: vec![Shape {
            geometry: Geometry::Rect {
                half_width: 0.5,
                half_height: 0.25,
            },
            pose: Pose {
                x: 0.0,
                y: 0.0,
                angle: 0.3,
            },
            color: Rgba::rgb(200, 0, 0),
        }],
        polylines: vec![Polyline {
            points: vec![[-2.0, -1.0], [2.0, -1.0], [2.0, 1.0]],
            closed: true,
            color: Rgba::rgb(0, 0, 0),
            width: 0.05,
        }],
        overlays: vec![],
    }
}

#[test]
fn scene_fits_the_view_into_the_scene_area() {
    let regions = Regions::new(640, 480, true);
    let mesh = scene_mesh(&frame(), &regions);
    assert_eq!(mesh.positions.len(), mesh.colors.len());
    assert_eq!(mesh.indices.len() % 3, 0);
    let left = regions.to_world(regions.scene.x0, 0.0)[0];
    let right = regions.to_world(regions.scene.x1, 0.0)[0];
    for p in &mesh.positions {
        assert!(
            p[0] >= left - 1.0 && p[0] <= right + 1.0,
            "{p:?} outside the scene"
        );
    }
    // The 4 m wide view spans the scene width minus the border.
    let t = SceneTransform::fit([-2.0, -1.0, 2.0, 1.0], regions.scene, &regions);
    let a = t.apply([-2.0, 0.0]);
    let b = t.apply([2.0, 0.0]);
    assert!((b[0] - a[0] - (regions.scene.x1 - 16.0)).abs() < 1e-3);
}

#[test]
fn view_box_falls_back_to_the_contents() {
    let mut f = frame();
    f.view = None;
    let v = view_box(&f);
    assert!(v[0] < -2.0 && v[2] > 2.0 && v[1] < -1.0 && v[3] > 1.0);
    assert_eq!(view_box(&Frame::default()), [-1.0, -1.0, 1.0, 1.0]);
}

#[test]
fn panel_colours_follow_the_state() {
    let layout = PanelLayout {
        title: "t".into(),
        nodes: (0..3)
            .map(|i| PanelNode {
                position: [i as f32, 0.0],
                label: format!("n{i}"),
                label_side: LabelSide::Left,
                role_color: Rgba::rgb(1, 2, 3),
            })
            .collect(),
        edges: vec![super::super::PanelEdge {
            from: 0,
            to: 2,
            polarity: -1,
        }],
    };
    let regions = Regions::new(640, 480, true);
    let idle = panel_mesh(&layout, None, &regions);
    let busy = panel_mesh(
        &layout,
        Some(&PanelState {
            node_activity: vec![1.0, -1.0, 0.0],
            edge_activity: vec![1.0],
        }),
        &regions,
    );
    assert_ne!(idle.colors, busy.colors);
    assert_eq!(activity_color(0.0), Rgba::rgb(255, 255, 255));
    assert_eq!(activity_color(f32::NAN), Rgba::rgb(255, 255, 255));
    assert_eq!(activity_color(1.0), Rgba::rgb(214, 39, 40));
    let (positions, r) = panel_positions(&layout, &regions);
    let panel = regions.panel.expect("panel");
    for p in positions {
        let x = p[0] + regions.width / 2.0;
        assert!(x > panel.x0 + LABEL_MARGIN_LEFT - 1.0 && x < panel.x1 - LABEL_MARGIN_RIGHT + 1.0);
    }
    assert!((2.5..=10.0).contains(&r));
}

#[test]
fn an_inset_is_drawn_pixel_by_pixel_in_the_scene_top_left_corner() {
    let regions = Regions::new(640, 480, true);
    let mut pixels = vec![Rgba::rgb(0, 0, 255); 8 * 3];
    pixels[0] = Rgba::rgb(255, 0, 0);
    let inset = Inset {
        width: 8,
        height: 3,
        pixels,
    };
    let area = inset_area(&inset, &regions).expect("an area");
    assert!(area.x0 >= regions.scene.x0 && area.y0 >= regions.scene.y0);
    assert!(area.x1 <= regions.scene.x1 && area.y1 <= regions.scene.y1);
    assert!(((area.y1 - area.y0) / (area.x1 - area.x0) - 3.0 / 8.0).abs() < 1e-4);
    let mut mesh = MeshData::default();
    inset_mesh(&mut mesh, &inset, &regions);
    // A frame, then 4 vertices per pixel; the first pixel is red, at the top-left.
    assert_eq!(mesh.positions.len(), 4 * (1 + 24));
    assert_eq!(mesh.colors[4], linear(Rgba::rgb(255, 0, 0)));
    assert_eq!(mesh.colors[8], linear(Rgba::rgb(0, 0, 255)));
    let top_left = regions.to_world(area.x0, area.y0);
    let first = &mesh.positions[4..8];
    assert!(first
        .iter()
        .any(|p| (p[0] - top_left[0]).abs() < 1e-3 && (p[1] - top_left[1]).abs() < 1e-3));
    // A picture whose pixels do not fill it draws nothing.
    let broken = Inset {
        width: 8,
        height: 3,
        pixels: vec![],
    };
    let mut mesh = MeshData::default();
    inset_mesh(&mut mesh, &broken, &regions);
    assert!(mesh.positions.is_empty());
}
