defmodule Keyring.Mesh.TermCodecTest do
  use ExUnit.Case, async: true

  alias Keyring.Mesh.TermCodec

  # Law checked: decode(encode(t)) == t for every term the codec carries
  # (integers within 64 bits, floats, binaries, existing atoms, proper lists,
  # tuples, maps).
  test "round trip law (PropEr, 300 cases)" do
    property =
      :proper.forall(codec_term(), fn t ->
        {:ok, bytes} = TermCodec.encode(t)
        TermCodec.decode(bytes) == {:ok, t}
      end)

    assert :proper.quickcheck(property, [{:numtests, 300}, {:max_size, 12}, :quiet]) == true
  end

  defp codec_term do
    leaf =
      :proper_types.oneof([
        :proper_types.integer(-Bitwise.bsl(1, 63), Bitwise.bsl(1, 63) - 1),
        :proper_types.float(),
        :proper_types.binary(),
        :proper_types.oneof([:ok, :error, nil, true, false, :keyring])
      ])

    :proper_types.sized(fn size -> nested(leaf, min(size, 4)) end)
  end

  defp nested(leaf, 0), do: leaf

  defp nested(leaf, n) do
    inner = :proper_types.lazy(fn -> nested(leaf, n - 1) end)

    :proper_types.frequency([
      {3, leaf},
      {1, :proper_types.list(inner)},
      {1, :proper_types.bind(:proper_types.list(inner), &List.to_tuple/1, false)},
      {1,
       :proper_types.bind(
         :proper_types.list(:proper_types.tuple([leaf, inner])),
         &Map.new/1,
         false
       )}
    ])
  end

  test "unknown atoms are refused, never created" do
    name = "keyring_never_seen_#{System.unique_integer([:positive])}"
    bytes = <<1, 4, byte_size(name)>> <> name
    assert {:error, {:unknown_atom, ^name}} = TermCodec.decode(bytes)
    assert_raise ArgumentError, fn -> String.to_existing_atom(name) end
  end

  test "malformed documents give errors, not crashes" do
    {:ok, good} = TermCodec.encode({:ok, [1, "two", 3.0], %{a: 1}})

    corpus =
      [<<>>, <<2, 1>>, <<1, 99>>, <<1, 5, 255, 255, 255, 255>>, <<1, 3, 0, 0, 0, 9, 1>>] ++
        for(n <- 0..(byte_size(good) - 1), do: binary_part(good, 0, n)) ++ [good <> <<0>>]

    for bytes <- corpus do
      assert {:error, _} = TermCodec.decode(bytes), "accepted #{inspect(bytes)}"
    end

    deep = Enum.reduce(1..70, [], fn _, acc -> [acc] end)
    assert {:error, :too_deep} = TermCodec.encode(deep)
    assert {:error, {:unsupported, "pid"}} = TermCodec.encode(self())
    assert {:error, {:unsupported, "improper list"}} = TermCodec.encode([1 | 2])
    assert {:error, {:unsupported, "reference"}} = TermCodec.encode(make_ref())
    assert {:error, {:unsupported, "fun"}} = TermCodec.encode(fn -> 1 end)
    # Duplicate keys in a map document are refused.
    dup = <<1, 7, 0, 0, 0, 2, 4, 1, ?a, 1::64, 4, 1, ?a, 2::64>>
    dup = binary_replace_ints(dup)
    assert {:error, {:bad_term, _}} = TermCodec.decode(dup)
  end

  describe "limits (the same for requests and replies)" do
    test "a count larger than the rest of the document can hold is refused at its header" do
      # Every level claims as many elements as there are bytes left: the
      # decoder that trusted counts reserved 32 bytes per claimed element at
      # each of 64 levels.
      size = 2 * 1024 * 1024
      lying = Enum.reduce(1..64, <<1>>, fn _, acc -> acc <> <<5, size - byte_size(acc)::32>> end)
      lying = lying <> :binary.copy(<<0>>, size - byte_size(lying))

      assert {:error, {:truncated, why}} = TermCodec.decode(lying)
      assert why =~ "claims"
    end

    test "more values than the budget are refused, encoded or decoded" do
      n = div(8 * 1024 * 1024, 3)
      atoms = IO.iodata_to_binary([1, <<5, n::32>>, :binary.copy(<<4, 1, ?a>>, n)])
      assert {:error, {:too_many_values, 2_097_152}} = TermCodec.decode(atoms)

      assert {:error, {:too_many_values, 2_097_152}} =
               TermCodec.encode(List.duplicate(:a, 2_097_152))

      assert {:ok, _} = TermCodec.encode(List.duplicate(:a, 2_097_151))
    end

    test "documents past the normal-scheduler bounds are handled on a dirty scheduler" do
      many = Enum.to_list(1..1_500)
      copied = List.duplicate(:binary.copy("x", 1024), 300)

      for term <- [many, copied, %{list: many}] do
        assert {:error, :dirty} = Keyring.Native.term_encode(term)
        assert {:ok, bytes} = TermCodec.encode(term)
        assert {:error, :dirty} = Keyring.Native.term_decode(bytes)
        assert {:ok, ^term} = TermCodec.decode(bytes)
        assert TermCodec.dirty?(term)
      end

      small = Enum.to_list(1..900)
      assert {:ok, bytes} = Keyring.Native.term_encode(small)
      assert {:ok, ^small} = Keyring.Native.term_decode(bytes)
      refute TermCodec.dirty?(small)
      # A large binary is lent or sub-binaried: no copy, no dirty hop.
      big = :binary.copy("y", 4 * 1024 * 1024)
      {:ok, bytes} = TermCodec.encode({:put, big})
      assert {:ok, {:put, ^big}} = Keyring.Native.term_decode(bytes)
      refute TermCodec.dirty?({:put, big}, 64 * 1024)
    end

    test "dirty?/2 stops walking once a term is known to be costly" do
      long = List.duplicate(1, 5_000_000)
      # Reductions, not time: a GC of this test's 80 MB heap may fall in.
      {:reductions, r0} = Process.info(self(), :reductions)
      assert TermCodec.dirty?(long)
      {:reductions, r1} = Process.info(self(), :reductions)
      assert r1 - r0 < 50_000, "walked the whole list (#{r1 - r0} reductions)"
      assert TermCodec.dirty?(List.to_tuple(long))
      assert TermCodec.dirty?(Map.new(1..1_500, &{&1, &1}))
    end
  end

  # <<1::64>> above is a bare integer payload; prefix each with the int tag.
  defp binary_replace_ints(<<1, 7, n::binary-size(4), 4, 1, ?a, x::64, 4, 1, ?a, y::64>>),
    do: <<1, 7, n::binary, 4, 1, ?a, 1, x::64, 4, 1, ?a, 1, y::64>>
end
