"""The gated PixelCNN prior over code grids: causal in raster order without a blind spot, and able to learn
and sample a grid whose cells follow from the earlier ones."""

from __future__ import annotations

import pytest
import torch

from genlab.models.pixelcnn import GatedPixelCNN
from helpers import one_thread

GRID = (5, 5)


def dependencies(model: GatedPixelCNN, cell: tuple[int, int]) -> torch.Tensor:
    """(h, w) booleans: which cells' codes change the logits of `cell`, from the gradient through the embedding."""
    torch.manual_seed(0)
    indices = torch.randint(model.num_codes, (1, *GRID))
    x = model.embedding(indices).permute(0, 3, 1, 2).detach().requires_grad_(True)
    v, h = x, x
    for layer in model.layers:
        v, h = layer(v, h)
    model.head(h)[0, :, cell[0], cell[1]].sum().backward()
    return x.grad[0].abs().sum(0) > 0


@pytest.mark.parametrize("layers", [1, 3])
def test_each_cell_depends_on_earlier_cells_only_and_on_its_neighbours_before_it(layers):
    torch.manual_seed(0)
    model = GatedPixelCNN(num_codes=6, channels=8, layers=layers, kernel=3)
    for cell in [(0, 0), (2, 2), (4, 1), (3, 4)]:
        seen = dependencies(model, cell)
        flat = seen.flatten()
        at = cell[0] * GRID[1] + cell[1]
        assert not flat[at:].any(), f"{cell} sees itself or later cells: {seen.int().tolist()}"
        if cell[1] > 0:
            assert seen[cell[0], cell[1] - 1]  # the cell to its left
        if cell[0] > 0:
            assert seen[cell[0] - 1, cell[1]]  # the cell above
            if cell[1] + 1 < GRID[1]:
                assert seen[cell[0] - 1, cell[1] + 1]  # above right: no blind spot


def test_it_learns_and_samples_grids_that_follow_from_their_first_cell():
    torch.manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    board = (rows + cols) % 2  # checkerboards of codes 1 and 2, in both phases
    data = torch.stack([board + 1, 2 - board])
    model = GatedPixelCNN(num_codes=4, channels=16, layers=3, kernel=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with one_thread():
        for _ in range(60):
            loss = model.loss(data[torch.randint(2, (16,))])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():  # log 2 / 16 cells ~ 0.043 nats is the floor: only the first cell is a coin toss
        assert float(model.loss(data)) < 0.1
    grids = model.sample(8, (4, 4), generator=torch.Generator().manual_seed(0))
    assert grids.shape == (8, 4, 4)
    matches = [any(torch.equal(g, d) for d in data) for g in grids]
    assert sum(matches) >= 6, grids


def test_the_row_by_row_pass_gives_each_cell_the_logits_of_a_full_pass_over_the_grid():
    torch.manual_seed(0)
    model = GatedPixelCNN(num_codes=6, channels=8, layers=3, kernel=5).double()
    indices = torch.randint(6, (2, 6, 7))
    full = model(indices)
    for i in range(6):
        features = model.vertical_features(indices[:, :i + 1])
        for j in range(7):
            fast = model.cell_logits(indices[:, i:i + 1, :j + 1], features)
            torch.testing.assert_close(fast, full[:, :, i, j], rtol=1e-10, atol=1e-10, msg=f"cell {(i, j)}")


def test_sampling_draws_what_a_full_pass_per_cell_draws():
    torch.manual_seed(0)
    model = GatedPixelCNN(num_codes=5, channels=8, layers=2, kernel=3).double()
    grid = (4, 5)
    drawn = model.sample(6, grid, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    naive = torch.zeros(6, *grid, dtype=torch.long)
    with torch.no_grad():
        for i in range(grid[0]):
            for j in range(grid[1]):
                probs = torch.softmax(model(naive)[:, :, i, j].float(), dim=1)
                naive[:, i, j] = torch.multinomial(probs, 1, generator=gen).squeeze(1)
    assert torch.equal(drawn, naive)
