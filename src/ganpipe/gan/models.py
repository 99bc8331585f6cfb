"""Generator and discriminator families: `mlp` (the seed article's), `dcgan` (conv), `resnet` (SNGAN-style,
gan/resnet.py) and `r3gan` (R3GAN, gan/r3gan.py, which initialises its own weights), with weight init.

G maps z [B, z_dim] (and labels [B] when conditional) to images [B, C, H, W] in [-1, 1]. D maps images (and
labels) to one raw logit per image [B]; the seed's sigmoid output lives in the loss (BCE-with-logits is the
same loss computed without overflow), so D never ends in a sigmoid and every loss, WGAN's included, fits it.

Conditional models: G concatenates a learned label embedding to z (Mirza & Osindero); D is a projection
discriminator (Miyato & Koyama 2018): logit = w . phi(x) + <embed(y), phi(x)>.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganpipe.errors import ConfigError
from ganpipe.gan import r3gan, resnet
from ganpipe.params.config import ModelConfig

ImageShape = tuple[int, int, int]  # (C, H, W)


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "tanh": nn.Tanh()}[name]


def _sn(layer: nn.Module, enabled: bool) -> nn.Module:
    return spectral_norm(layer) if enabled else layer


class Conditioning(nn.Module):
    """G's input: z, or [z, embed(y)] for a conditional model."""

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, cfg.embed_dim) if cfg.conditional else None
        self.width = cfg.z_dim + (cfg.embed_dim if cfg.conditional else 0)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return z
        if y is None:
            raise ValueError("a conditional generator needs class labels")
        return torch.cat([z, self.embed(y).to(z.dtype)], dim=1)


class Projection(nn.Module):
    """D's head: a linear logit from features, plus the projection <embed(y), features> when conditional."""

    def __init__(self, cfg: ModelConfig, features: int, num_classes: int):
        super().__init__()
        self.linear = _sn(nn.Linear(features, 1), cfg.d_spectral_norm)
        self.embed = _sn(nn.Embedding(num_classes, features), cfg.d_spectral_norm) if cfg.conditional else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.linear(h).flatten()
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional discriminator needs class labels")
            out = out + (self.embed(y).to(h.dtype) * h).sum(dim=1)
        return out


class MLPGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: ImageShape, num_classes: int):
        super().__init__()
        self.shape = shape
        self.cond = Conditioning(cfg, num_classes)
        layers: list[nn.Module] = []
        width = self.cond.width
        for hidden in cfg.g_hidden:
            layers.append(_sn(nn.Linear(width, hidden), cfg.g_spectral_norm))
            if cfg.g_batchnorm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(_activation(cfg.g_activation))
            width = hidden
        layers += [_sn(nn.Linear(width, shape[0] * shape[1] * shape[2]), cfg.g_spectral_norm), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.cond(z, y)).view(-1, *self.shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: ImageShape, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = shape[0] * shape[1] * shape[2]
        for hidden in cfg.d_hidden:
            layers += [_sn(nn.Linear(width, hidden), cfg.d_spectral_norm), _activation(cfg.d_activation)]
            if cfg.d_dropout > 0:
                layers.append(nn.Dropout(cfg.d_dropout))
            width = hidden
        self.net = nn.Sequential(*layers)
        self.head = Projection(cfg, width, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.net(x), y)


def _dcgan_base(cfg: ModelConfig, shape: ImageShape) -> int:
    """Spatial size G starts from: H halved once per upsampling block (one per g_hidden entry)."""
    _, h, w = shape
    levels = len(cfg.g_hidden)
    if h != w or h % (2**levels) or h // (2**levels) < 2:
        raise ConfigError(
            f"model.g_hidden has {levels} upsampling blocks, which does not fit {h}x{w} images: "
            f"the image side must be square and divisible by 2**len(g_hidden) (e.g. 2 blocks for 28x28, "
            f"3 for 32x32)"
        )
    return h // (2**levels)


class DCGANGenerator(nn.Module):
    """Linear z -> [g_hidden[0], s, s], then one (ConvTranspose 4x4 stride 2, BN, act) block per width."""

    def __init__(self, cfg: ModelConfig, shape: ImageShape, num_classes: int):
        super().__init__()
        self.base = _dcgan_base(cfg, shape)
        self.c0 = cfg.g_hidden[0]
        self.cond = Conditioning(cfg, num_classes)
        flat = self.c0 * self.base * self.base
        project: list[nn.Module] = [_sn(nn.Linear(self.cond.width, flat, bias=not cfg.g_batchnorm), cfg.g_spectral_norm)]
        if cfg.g_batchnorm:
            project.append(nn.BatchNorm1d(flat))
        self.project = nn.Sequential(*project, _activation(cfg.g_activation))
        blocks: list[nn.Module] = []
        widths = list(cfg.g_hidden[1:]) + [shape[0]]
        c_in = self.c0
        for i, c_out in enumerate(widths):
            last = i == len(widths) - 1
            conv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=last or not cfg.g_batchnorm)
            blocks.append(_sn(conv, cfg.g_spectral_norm))
            if not last:
                if cfg.g_batchnorm:
                    blocks.append(nn.BatchNorm2d(c_out))
                blocks.append(_activation(cfg.g_activation))
            c_in = c_out
        blocks.append(nn.Tanh())
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.project(self.cond(z, y)).view(-1, self.c0, self.base, self.base))


class DCGANDiscriminator(nn.Module):
    """One (Conv 4x4 stride 2, act) block per d_hidden width, then a linear (projection) logit."""

    def __init__(self, cfg: ModelConfig, shape: ImageShape, num_classes: int):
        super().__init__()
        c, h, _ = shape
        layers: list[nn.Module] = []
        for width in cfg.d_hidden:
            layers += [_sn(nn.Conv2d(c, width, 4, 2, 1), cfg.d_spectral_norm), _activation(cfg.d_activation)]
            if cfg.d_dropout > 0:
                layers.append(nn.Dropout(cfg.d_dropout))
            c, h = width, (h + 1) // 2
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.head = Projection(cfg, c * h * h, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.net(x), y)


class ResNetGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: ImageShape, num_classes: int):
        super().__init__()
        self.base = _dcgan_base(cfg, shape)
        self.c0 = cfg.g_hidden[0]
        self.cond = Conditioning(cfg, num_classes)  # its embedding drives the conditional batch norms
        self.project = _sn(nn.Linear(cfg.z_dim, self.c0 * self.base * self.base), cfg.g_spectral_norm)
        sn = lambda layer: _sn(layer, cfg.g_spectral_norm)  # noqa: E731
        self.blocks, self.out = resnet.generator_blocks(cfg, shape[0], cfg.embed_dim if cfg.conditional else None, sn)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond.embed is not None and y is None:
            raise ValueError("a conditional generator needs class labels")
        e = self.cond.embed(y) if self.cond.embed is not None else None
        h = self.project(z).view(-1, self.c0, self.base, self.base)
        for block in self.blocks:
            h = block(h, e)
        return torch.tanh(self.out["conv"](self.out["act"](self.out["bn"](h, None))))


class ResNetDiscriminator(nn.Module):
    def __init__(self, cfg: ModelConfig, shape: ImageShape, num_classes: int):
        super().__init__()
        self.net, width = resnet.discriminator_blocks(cfg, shape[0], shape[1], lambda m: _sn(m, cfg.d_spectral_norm))
        self.head = Projection(cfg, width, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.net(x).sum(dim=(2, 3)), y)  # sum pooling, as in SNGAN


def _dcgan_init(module: nn.Module) -> None:
    """Radford et al.: conv/linear weights N(0, 0.02), batch-norm scale N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        weight = module.parametrizations.weight.original if hasattr(module, "parametrizations") else module.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


ARCHITECTURES = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ResNetDiscriminator),
    "r3gan": (r3gan.R3GANGenerator, r3gan.R3GANDiscriminator),
}
INIT = {"dcgan": _dcgan_init, "resnet": resnet.init_weights}


def build_generator(cfg: ModelConfig, shape: ImageShape, num_classes: int) -> nn.Module:
    G = ARCHITECTURES[cfg.arch][0](cfg, shape, num_classes)
    if cfg.arch in INIT:
        G.apply(INIT[cfg.arch]) if cfg.arch == "dcgan" else INIT[cfg.arch](G)
    return G


def build_discriminator(cfg: ModelConfig, shape: ImageShape, num_classes: int) -> nn.Module:
    D = ARCHITECTURES[cfg.arch][1](cfg, shape, num_classes)
    if cfg.arch in INIT:
        D.apply(INIT[cfg.arch]) if cfg.arch == "dcgan" else INIT[cfg.arch](D)
    return D


def classes_drawn(G: nn.Module) -> int | None:
    """How many classes a conditional generator draws from; None for an unconditional one."""
    if isinstance(G, r3gan.R3GANGenerator):  # a class embedding of its own (a linear map of the one-hot label)
        return G.num_classes if G.embed is not None else None
    return G.cond.embed.num_embeddings if G.cond.embed is not None else None


def build(cfg: ModelConfig, shape: ImageShape, seed: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    """(G, D) with weights drawn from `seed`, so the same params give the same initial networks."""
    torch.manual_seed(seed)
    return build_generator(cfg, shape, num_classes), build_discriminator(cfg, shape, num_classes)
