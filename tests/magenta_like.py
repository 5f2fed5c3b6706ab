"""A SavedModel built the way Magenta's ``export_hub.py`` builds the TF Hub stylization model.

A TF1-style graph under Magenta's scopes and names (``InceptionV3/Mixed_6e/concat`` ->
``bottleneck/Mean`` -> ``Conv/BiasAdd`` [N,1,1,100] -> ``style_params/<layer>/StyleNorm/Conv{,_1}``
-> a transformer with conditional style norm ending in ``transformer/expand/conv3/conv/Sigmoid``),
wrapped with ``tf.compat.v1.wrap_function``, pruned to (content, style) -> image and saved with that
call as its signature.  Widths are small and weights random unless asked otherwise: the tests need
the structure, not the pictures.  ``widths=(32, 64, 128), residuals=5`` gives the real transfer
network's shape (for speed figures); the style network stays a small stand-in for Inception-v3.
"""

from __future__ import annotations

from pathlib import Path


def _conv(x, k, stride, n, scope, act=None, norm=None):
    import tensorflow as tf

    v1 = tf.compat.v1
    with v1.variable_scope(scope):
        w = v1.get_variable("weights", [k, k, x.shape[-1], n], initializer=v1.random_normal_initializer(0, (2.0 / (k * k * x.shape[-1])) ** 0.5))
        p = k // 2
        if p:
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
        y = tf.nn.conv2d(x, w, [1, stride, stride, 1], "VALID", name="Conv2D")
        if norm is not None:
            y = norm(y)
        else:
            b = v1.get_variable("biases", [n], initializer=v1.random_normal_initializer(0, 0.1))
            y = tf.nn.bias_add(y, b, name="BiasAdd")
        return act(y) if act else y


def build(content, style, widths=(8, 16, 32), residuals=2, code_size=100, inception_depth=24):
    """Magenta's build_model, shrunk: returns the stylized image tensor."""
    import tensorflow as tf

    v1 = tf.compat.v1
    w1, w2, w3 = widths
    layers = []  # (StyleNorm scope, depth), in Magenta's naming
    for i in range(1, residuals + 1):
        layers += [(f"transformer/residual/residual{i}/conv{j}/StyleNorm", w3) for j in (1, 2)]
    layers += [("transformer/expand/conv1/conv/StyleNorm", w2), ("transformer/expand/conv2/conv/StyleNorm", w1), ("transformer/expand/conv3/conv/StyleNorm", 3)]

    with v1.variable_scope("InceptionV3"):
        h = _conv(style, 3, 2, inception_depth, "Conv2d_1a_3x3", tf.nn.relu)
        with v1.variable_scope("Mixed_6e"):
            a = _conv(h, 1, 2, inception_depth, "Branch_0", tf.nn.relu)
            b = _conv(h, 3, 2, inception_depth, "Branch_1", tf.nn.relu)
            feat = tf.concat([a, b], 3, name="concat")
    with tf.name_scope("bottleneck"):
        bottleneck = tf.reduce_mean(feat, axis=[1, 2], keepdims=True)
    bottleneck = _conv(bottleneck, 1, 1, code_size, "Conv")  # Conv/Conv2D -> Conv/BiasAdd
    params = {}
    with v1.variable_scope("style_params"):
        for name, depth in layers:
            with v1.variable_scope(name):
                beta = tf.squeeze(_conv(bottleneck, 1, 1, depth, "Conv"), [1, 2], name="SpatialSqueeze")
                gamma = tf.squeeze(_conv(bottleneck, 1, 1, depth, "Conv_1"), [1, 2], name="SpatialSqueeze")
                params[name] = (beta, 1.0 + 0.1 * gamma)

    def style_norm(name):
        def norm(x):
            with v1.variable_scope("StyleNorm"):
                mean, var = tf.nn.moments(x, [1, 2], keepdims=True)
                beta, gamma = params[name]
                return tf.nn.batch_normalization(x, mean, var, beta[:, None, None, :], gamma[:, None, None, :], 1e-5)

        return norm

    with v1.variable_scope("transformer"):
        with v1.variable_scope("contract"):
            h = _conv(content, 9, 1, w1, "conv1", tf.nn.relu)
            h = _conv(h, 3, 2, w2, "conv2", tf.nn.relu)
            h = _conv(h, 3, 2, w3, "conv3", tf.nn.relu)
        with v1.variable_scope("residual"):
            for i in range(1, residuals + 1):
                with v1.variable_scope(f"residual{i}"):
                    r = _conv(h, 3, 1, w3, "conv1", tf.nn.relu, style_norm(f"transformer/residual/residual{i}/conv1/StyleNorm"))
                    h = h + _conv(r, 3, 1, w3, "conv2", None, style_norm(f"transformer/residual/residual{i}/conv2/StyleNorm"))
        with v1.variable_scope("expand"):
            for name, n, k, act in (("conv1", w2, 3, tf.nn.relu), ("conv2", w1, 3, tf.nn.relu), ("conv3", 3, 9, tf.nn.sigmoid)):
                with v1.variable_scope(name):
                    if name != "conv3":
                        s = tf.shape(h)
                        h = v1.image.resize_nearest_neighbor(h, [2 * s[1], 2 * s[2]])
                    h = _conv(h, k, 1, n, "conv", act, style_norm(f"transformer/expand/{name}/conv/StyleNorm"))
    return h


def save_magenta_like(path: Path, **kw) -> Path:
    """export_hub.py's steps: wrap_function over the TF1 graph, prune to the two images, save."""
    import tensorflow as tf

    spec = [tf.TensorSpec((None, None, None, 3), tf.float32)] * 2
    feeds, fetches = [], []

    def umbrella(content, style):
        feeds.extend([content, style])
        out = build(content, style, **kw)
        fetches.append(out)
        return out

    fn = tf.compat.v1.wrap_function(umbrella, spec).prune(feeds, fetches)
    obj = tf.train.Checkpoint()
    obj.__call__ = fn
    obj.variables = list(fn.graph.variables)
    tf.saved_model.save(obj, str(path), signatures=obj.__call__)
    return path
