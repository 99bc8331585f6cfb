"""The capped reference (evaluate.reference_n, eval/reference.py): a deterministic seeded subset in the split's
order, the whole split when it is smaller, and rows gathered only when sliced."""
import torch

from ganpipe.eval import reference


def test_the_draw_is_a_sorted_seeded_subset_and_none_when_the_split_fits():
    assert reference.draw(100, None, 0) is None and reference.draw(100, 100, 0) is None
    a, b = reference.draw(1000, 50, 0), reference.draw(1000, 50, 0)
    assert torch.equal(a, b) and len(a) == 50 and len(set(a.tolist())) == 50
    assert torch.equal(a, a.sort().values) and 0 <= int(a.min()) and int(a.max()) < 1000
    assert not torch.equal(a, reference.draw(1000, 50, 1))  # each split has its own seed


def test_a_capped_part_gathers_its_rows_when_sliced_and_records_the_whole_size():
    images = torch.arange(200 * 3 * 2 * 2, dtype=torch.int64).reshape(200, 3, 2, 2).to(torch.uint8)
    labels = torch.arange(200) % 7
    part = reference.capped(images, labels, 20, "train")
    index = reference.draw(200, 20, reference.SEEDS["train"])
    assert part.total == 200 and len(part.images) == 20 and part.images.shape == (20, 3, 2, 2)
    assert torch.equal(part.images[5:9], images[index[5:9]]) and torch.equal(part.labels, labels[index])
    assert torch.equal(part.images[torch.tensor([3, 0])], images[index[torch.tensor([3, 0])]])
    whole = reference.capped(images, labels, 500, "holdout")
    assert whole.images is images and whole.total == 200
    record = reference.protocol(20, part, whole)
    assert record == {"reference_n": 20, "n_train_total": 200, "n_holdout_total": 200,
                      "reference_draw": reference.DRAW}
    assert reference.protocol(500, whole, whole)["reference_draw"] == "the whole splits (each within reference_n)"


def test_the_nearest_neighbour_search_in_reference_chunks_equals_the_search_in_one_go():
    from ganpipe.eval import copying

    g = torch.Generator().manual_seed(0)
    refs, queries = torch.randn(500, 16, generator=g), torch.randn(70, 16, generator=g)
    refs[123] = queries[5]  # an exact copy is found at distance 0
    whole = torch.cdist(queries.double(), refs.double())
    dist, index = copying.nearest(queries, refs, chunk=16, ref_chunk=37)
    assert torch.equal(index, whole.argmin(1)) and torch.allclose(dist, whole.min(1).values)
    assert index[5] == 123 and dist[5] < 1e-6
    rows = torch.arange(100, 400, 3)  # a subset searched where it lies, as C_T searches a cell
    sub_d, sub_i = copying.nearest(queries, refs, chunk=16, ref_chunk=37, rows=rows)
    assert torch.equal(rows[sub_i], rows[whole[:, rows].argmin(1)]) and torch.allclose(sub_d, whole[:, rows].min(1).values)
